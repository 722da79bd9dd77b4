import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { buildHub, openPostgres, startInfluxd, startPostgres, type Hub, type HubOptions, type SqlClient } from '@trellis/hub'
import { profileByName } from './payloads.js'

/** The hub's Node flags, as `npm run hub` gives them, for a hub in a bench helper process. */
export const hubNodeFlags = ['--max-semi-space-size=64', '--heap-growing-percent=30']

export interface BenchInflux {
  readonly url: string
  readonly pid: number | undefined
  dispose (): Promise<void>
}

/** A managed influxd of its own on an ephemeral 127.0.0.1 port, in a temporary folder. */
export async function startBenchInflux (): Promise<BenchInflux> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-bench-influx-'))
  const influxd = await startInfluxd({ dataDir: dir, supervise: false })
  return {
    url: influxd.url,
    pid: influxd.pid,
    async dispose () {
      await influxd.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface BenchPostgres {
  /** The registry's database, for `buildHub({ sql })`; the hub closes it. */
  readonly sql: SqlClient
  readonly pid: number | undefined
  dispose (): Promise<void>
}

/**
 * A managed PostgreSQL of its own in a temporary folder, as `npm start` runs
 * it; the folder goes with it, also if the bench dies.
 */
export async function startBenchPostgres (): Promise<BenchPostgres> {
  // An empty folder for initdb; as root, it is handed to the postgres user the server runs as.
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-bench-pg-'))
  const server = await startPostgres({ dataDir: dir, supervise: false, ephemeral: true })
  return {
    sql: openPostgres(server.connection),
    pid: server.pid,
    async dispose () {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface RunningHub {
  hub: Hub
  httpUrl: string
  mqttUrl: string
  close (): Promise<void>
}

/**
 * The hub with its in-process broker, as `main.ts` runs it, on ephemeral
 * 127.0.0.1 ports; without `sql`, on a managed PostgreSQL of its own.
 */
export async function startTrellis (opts: Omit<HubOptions, 'logger' | 'sql'> & { sql?: SqlClient }): Promise<RunningHub> {
  const postgres = opts.sql ? null : await startBenchPostgres()
  const hub = await buildHub({ logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }), ...opts, sql: opts.sql ?? postgres!.sql })
  const { httpUrl, mqttUrl } = await hub.listen({ httpPort: 0, mqttPort: 0, host: '127.0.0.1' })
  return { hub, httpUrl, mqttUrl, close: async () => { await hub.close(); await postgres?.dispose() } }
}

export interface BenchDevice {
  id: string
  secret: string
  claimCode: string
  profile: string
  modelId: string
  makerId: string
}

export interface BenchFleet {
  makerId: string
  makerToken: string
  /** model id by profile name */
  models: Record<string, string>
  devices: BenchDevice[]
}

/** POSTs JSON and returns the answer's JSON; throws on a status of 300 or more. */
export async function post (base: string, path: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })
  const json = await res.json() as any
  if (res.status >= 300) throw new Error(`POST ${path} answered ${res.status}: ${JSON.stringify(json)}`)
  return json
}

/**
 * Provisions `count` devices through the maker API, spread round-robin over
 * the profiles' models, as a maker would.
 */
export async function provisionFleet (httpUrl: string, opts: { count: number, profiles: readonly string[], makerName?: string }): Promise<BenchFleet> {
  const maker = await post(httpUrl, '/v1/makers', { name: opts.makerName ?? 'Bench Appliances' })
  const models: Record<string, string> = {}
  for (const name of opts.profiles) {
    const model = await post(httpUrl, '/v1/models', profileByName(name).model, maker.token)
    models[name] = model.id
  }
  const devices: BenchDevice[] = []
  for (let p = 0; p < opts.profiles.length; p++) {
    const profile = opts.profiles[p]
    let wanted = Math.floor(opts.count / opts.profiles.length) + (p < opts.count % opts.profiles.length ? 1 : 0)
    while (wanted > 0) {
      const batch = Math.min(1000, wanted)
      const res = await post(httpUrl, '/v1/devices', { model: models[profile], count: batch }, maker.token)
      for (const d of res.devices as Array<{ id: string, secret: string, claimCode: string }>) {
        devices.push({ id: d.id, secret: d.secret, claimCode: d.claimCode, profile, modelId: models[profile], makerId: maker.id })
      }
      wanted -= batch
    }
  }
  // Interleave profiles so that any slice of the fleet is mixed.
  const byProfile = opts.profiles.map((p) => devices.filter((d) => d.profile === p))
  const mixed: BenchDevice[] = []
  for (let i = 0; mixed.length < devices.length; i++) for (const list of byProfile) if (list[i]) mixed.push(list[i])
  return { makerId: maker.id, makerToken: maker.token, models, devices: mixed }
}

/** An owner who claims `devices`; returns the owner's token. */
export async function claimAll (httpUrl: string, devices: readonly BenchDevice[]): Promise<string> {
  const owner = await post(httpUrl, '/v1/owners', { email: `bench-${Date.now()}@example.com`, password: 'correct horse battery' })
  for (const d of devices) await post(httpUrl, '/v1/devices/claim', { claimCode: d.claimCode }, owner.token)
  return owner.token
}

/** Points stored per `model` tag with timestamps in [fromMs, toMs), counted by InfluxDB itself. */
export async function countStored (influxUrl: string, database: string, measurements: readonly string[], fromMs: number, toMs: number): Promise<{ total: number, byModel: Record<string, number> }> {
  // One query per measurement: a multi-measurement SELECT … GROUP BY dropped a series here (InfluxDB 1.6).
  const perMeasurement = await Promise.all(measurements.map(async (m) => {
    const q = `SELECT count("value") FROM "${m}" WHERE time >= ${fromMs}ms AND time < ${toMs}ms GROUP BY "model"`
    const res = await fetch(`${influxUrl}/query?db=${encodeURIComponent(database)}&q=${encodeURIComponent(q)}`)
    const body = await res.json() as { results: Array<{ error?: string, series?: Array<{ tags?: Record<string, string>, values: unknown[][] }> }> }
    const result = body.results[0]
    if (result.error && !/database not found/.test(result.error)) throw new Error(`count query failed: ${result.error}`)
    return result.series ?? []
  }))
  const byModel: Record<string, number> = {}
  let total = 0
  for (const s of perMeasurement.flat()) {
    const n = Number(s.values[0]?.[1] ?? 0)
    const model = s.tags?.model ?? ''
    byModel[model] = (byModel[model] ?? 0) + n
    total += n
  }
  return { total, byModel }
}

export async function influxCommand (influxUrl: string, q: string): Promise<void> {
  const res = await fetch(`${influxUrl}/query?q=${encodeURIComponent(q)}`, { method: 'POST' })
  if (!res.ok) throw new Error(`${q} failed: ${res.status} ${await res.text()}`)
}

/**
 * Waits until InfluxDB holds `expected` points in the window, or until the
 * count stops growing for `settleMs`; resolves with the final count and
 * when it was first seen (performance.now()).
 */
export async function awaitStored (count: () => Promise<number>, expected: number, opts: { settleMs?: number, timeoutMs?: number, pollMs?: number } = {}): Promise<{ stored: number, atMs: number }> {
  const settleMs = opts.settleMs ?? 3000
  const deadline = performance.now() + (opts.timeoutMs ?? 60_000)
  const pollMs = opts.pollMs ?? 100
  let last = -1
  let lastChange = performance.now()
  for (;;) {
    const stored = await count()
    const now = performance.now()
    if (stored !== last) { last = stored; lastChange = now }
    if (stored >= expected) return { stored, atMs: now }
    if (now - lastChange > settleMs || now > deadline) return { stored, atMs: lastChange }
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}
