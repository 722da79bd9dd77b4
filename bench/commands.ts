/**
 * Command round trip: API call → hub validates and records → broker → SDK
 * device handler → ack → hub settles → HTTP answer. Measured at 1, 10 and
 * 100 commands in flight at once (one device per worker, as an owner's app
 * would address them), against a real influxd and the in-process broker on
 * 127.0.0.1 ephemeral ports.
 *
 *   npx tsx bench/commands.ts [--quick]
 *
 * Bounded: each level stops at its command count or its time budget,
 * whichever comes first.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { buildHub, startInfluxd } from '@trellis/hub'

const quick = process.argv.includes('--quick')
const levels = [
  { concurrency: 1, commands: quick ? 100 : 500 },
  { concurrency: 10, commands: quick ? 500 : 3000 },
  { concurrency: 100, commands: quick ? 1000 : 6000 },
]
/** Time budget per level, ms. */
const levelBudgetMs = quick ? 10_000 : 30_000
const warmup = 50

async function main (): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-bench-commands-'))
  const influxd = await startInfluxd({ dataDir: dir, supervise: false })
  const hub = await buildHub({ influxUrl: influxd.url, logger: pino({ level: 'silent' }) })
  const devices: Device[] = []
  try {
    const { httpUrl, mqttUrl } = await hub.listen({ httpPort: 0, mqttPort: 0, host: '127.0.0.1' })
    const post = async (p: string, body: unknown, token?: string) => {
      const res = await fetch(httpUrl + p, { method: 'POST', headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
      return { status: res.status, body: await res.json() as any }
    }
    const maker = await post('/v1/makers', { name: 'Bench Appliances' })
    const model = await post('/v1/models', { name: 'bench-thermo', capabilities: ['temperature', 'targetTemperature', 'power'] }, maker.body.token)
    const maxConcurrency = Math.max(...levels.map((l) => l.concurrency))
    const provisioned = await post('/v1/devices', { model: model.body.id, count: maxConcurrency }, maker.body.token)
    const owner = await post('/v1/owners', { email: 'bench@example.com', password: 'correct horse battery' })
    const ownerToken: string = owner.body.token
    for (const d of provisioned.body.devices) await post('/v1/devices/claim', { claimCode: d.claimCode }, ownerToken)
    for (const d of provisioned.body.devices as Array<{ id: string, secret: string }>) {
      devices.push(await connectDevice({
        url: mqttUrl,
        deviceId: d.id,
        secret: d.secret,
        handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) },
      }))
    }
    const ids = devices.map((d) => d.id)
    const deadline = Date.now() + 10_000
    while (!ids.every((id) => hub.state.get(id)?.online)) {
      if (Date.now() > deadline) throw new Error('devices did not come online within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    const send = async (deviceId: string, value: number): Promise<{ ms: number, ok: boolean }> => {
      const started = performance.now()
      const res = await fetch(`${httpUrl}/v1/devices/${deviceId}/commands?wait=5s`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}` },
        body: JSON.stringify({ set: { targetTemperature: value } }),
      })
      const body = await res.json() as { status?: string }
      return { ms: performance.now() - started, ok: res.status === 200 && body.status === 'ok' }
    }

    for (let i = 0; i < warmup; i++) await send(ids[i % ids.length], 20)

    const rows: string[][] = []
    for (const level of levels) {
      const latencies: number[] = []
      let failures = 0
      let issued = 0
      const stopAt = Date.now() + levelBudgetMs
      const started = performance.now()
      await Promise.all(Array.from({ length: level.concurrency }, async (_, worker) => {
        while (issued < level.commands && Date.now() < stopAt) {
          issued++
          const r = await send(ids[worker], 15 + (issued % 10))
          if (r.ok) latencies.push(r.ms)
          else failures++
        }
      }))
      const seconds = (performance.now() - started) / 1000
      latencies.sort((a, b) => a - b)
      const pct = (p: number) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN
      rows.push([
        String(level.concurrency),
        String(latencies.length + failures),
        String(failures),
        pct(0.5).toFixed(1),
        pct(0.99).toFixed(1),
        (latencies[latencies.length - 1] ?? NaN).toFixed(1),
        ((latencies.length + failures) / seconds).toFixed(0),
      ])
    }

    const header = ['in flight', 'commands', 'failed', 'p50 ms', 'p99 ms', 'max ms', 'commands/s']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ')
    console.log(`command round trip (API → device → ack → API), Node ${process.version}, ${quick ? 'quick' : 'full'} run`)
    console.log(line(header))
    for (const r of rows) console.log(line(r))
  } finally {
    await Promise.all(devices.map((d) => d.close().catch(() => {})))
    await hub.close()
    await influxd.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
