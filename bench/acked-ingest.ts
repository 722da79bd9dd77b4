/**
 * Acknowledged ingest: 20 SDK devices each send 2500 QoS 1 reports (two
 * readings each) with up to WINDOW unacknowledged at a time, through an
 * in-process hub whose broker sends a PUBACK only once the readings are
 * durable. Prints acknowledged reports per second.
 *
 *   WINDOW=20 FLUSH=25 SPOOL=1 npx tsx --conditions=development bench/acked-ingest.ts
 *
 * WINDOW: unacknowledged reports per device (default 200); FLUSH: the writer's
 * flushIntervalMs (default 25); SPOOL=1: give the hub a data folder (spool).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { connectDevice } from '@trellis/device-sdk'
import { buildHub, startInfluxd } from '@trellis/hub'
import { apiClient, seedFleet } from '../test/support/api.js'
import { startBenchPostgres } from './lib/stack.js'
const dir = await mkdtemp(path.join(tmpdir(), 'trellis-ackbench-'))
const influx = await startInfluxd({ dataDir: path.join(dir, 'influx'), supervise: false })
const registry = await startBenchPostgres()
const hub = await buildHub({ sql: registry.sql, writer: { flushIntervalMs: Number(process.env.FLUSH ?? 25) }, influxUrl: influx.url, dataDir: process.env.SPOOL ? path.join(dir, 'hub') : undefined })
const { httpUrl, mqttUrl } = await hub.listen({ httpPort: 0, mqttPort: 0 })
const window = Number(process.env.WINDOW ?? 200)
const fleet = await seedFleet(apiClient(httpUrl), { count: 20 })
const devices = await Promise.all(fleet.devices.map((d) => connectDevice({ url: mqttUrl, deviceId: d.id, secret: d.secret })))
const per = 2500
const base = Date.now() - 3_600_000
const t0 = performance.now()
await Promise.all(devices.map(async (device) => {
  const inFlight = new Set<Promise<void>>()
  for (let i = 0; i < per; i++) {
    const p = device.report({ temperature: 20, humidity: 50 }, base + i)
    inFlight.add(p); void p.finally(() => inFlight.delete(p))
    if (inFlight.size >= window) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
}))
const s = (performance.now() - t0) / 1000
console.log(`window ${window}, spool ${!!process.env.SPOOL}: ${20 * per} acknowledged reports in ${s.toFixed(2)} s = ${Math.round(20 * per / s)} reports/s (${Math.round(40 * per / s)} readings/s)`)
await Promise.all(devices.map((d) => d.close()))
await hub.close(); await influx.stop(); await registry.dispose(); await rm(dir, { recursive: true, force: true })
