import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startInfluxd, type ManagedInfluxd } from '@trellis/hub'

export interface TestInflux extends ManagedInfluxd {
  readonly dir: string
  /** Stops influxd and removes its folder. */
  dispose (): Promise<void>
}

/** A real influxd on an ephemeral 127.0.0.1 port, in a temporary folder. One per test file. */
export async function startTestInflux (opts: { supervise?: boolean } = {}): Promise<TestInflux> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-influx-'))
  const influxd = await startInfluxd({ dataDir: dir, supervise: opts.supervise ?? false })
  return {
    get url () { return influxd.url },
    get port () { return influxd.port },
    get pid () { return influxd.pid },
    dir,
    stop: () => influxd.stop(),
    kill: (signal?: NodeJS.Signals) => influxd.kill(signal),
    ready: () => influxd.ready(),
    async dispose () {
      await influxd.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Runs an InfluxQL query against the test server directly, bypassing the hub. */
export async function influxQuery (url: string, q: string, db = 'trellis'): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`)
  const body = await res.json() as { results: Array<{ series?: Array<{ columns: string[], values: unknown[][] }>, error?: string }> }
  const result = body.results[0]
  if (result.error) throw new Error(result.error)
  const rows: Array<Record<string, unknown>> = []
  for (const series of result.series ?? []) {
    for (const values of series.values) rows.push(Object.fromEntries(series.columns.map((c, i) => [c, values[i]])))
  }
  return rows
}
