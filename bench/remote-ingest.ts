/**
 * Ingest with the hub apart from the broker: a stand-alone broker, and a hub
 * on its persistent QoS 1 session that acknowledges each message only once
 * its readings are durable. 20 SDK devices each send PER QoS 1 reports (two
 * readings each), up to 200 unacknowledged at a time. Prints the rate at
 * which readings reached InfluxDB, from the first report to the last point.
 *
 *   PER=2500 FLUSH=25 npx tsx --conditions=development bench/remote-ingest.ts
 *
 * PER: reports per device (default 2500); FLUSH: the writer's flushIntervalMs
 * (default 25). Gives up after 120 s.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { authenticateDevicesOverHttp, createBroker } from '@trellis/broker'
import { connectDevice } from '@trellis/device-sdk'
import { buildHub, startInfluxd } from '@trellis/hub'
import { apiClient, seedFleet } from '../test/support/api.js'
import { startBenchPostgres } from './lib/stack.js'

const service = { username: 'trellis-hub', secret: 'bench-service-secret' }
const dir = await mkdtemp(path.join(tmpdir(), 'trellis-remotebench-'))
const influx = await startInfluxd({ dataDir: path.join(dir, 'influx'), supervise: false })
let hubUrl = ''
const broker = await createBroker({ service, authenticateDevice: (id, secret) => authenticateDevicesOverHttp({ url: `${hubUrl}/internal/mqtt/auth`, serviceSecret: service.secret })(id, secret) })
const brokerUrl = `mqtt://127.0.0.1:${(await broker.listen({ port: 0 })).port}`
const registry = await startBenchPostgres()
const hub = await buildHub({ sql: registry.sql, writer: { flushIntervalMs: Number(process.env.FLUSH ?? 25) }, influxUrl: influx.url, remoteBroker: { url: brokerUrl, ...service } })
hubUrl = (await hub.listen({ httpPort: 0, mqttPort: 0 })).httpUrl
const fleet = await seedFleet(apiClient(hubUrl), { count: 20 })
const devices = await Promise.all(fleet.devices.map((d) => connectDevice({ url: brokerUrl, deviceId: d.id, secret: d.secret })))
const per = Number(process.env.PER ?? 2500)
const total = 20 * per
const base = Date.now() - 3_600_000
const stored = async () => {
  const answer = await fetch(`${influx.url}/query?db=trellis&q=${encodeURIComponent('SELECT count("value") FROM "temperature"')}`).then((r) => r.json()) as { results: Array<{ series?: Array<{ values: number[][] }> }> }
  return answer.results[0]?.series?.[0]?.values[0]?.[1] ?? 0
}
const t0 = performance.now()
await Promise.all(devices.map(async (device) => {
  const inFlight = new Set<Promise<void>>()
  for (let i = 0; i < per; i++) {
    const p = device.report({ temperature: 20, humidity: 50 }, base + i)
    inFlight.add(p); void p.finally(() => inFlight.delete(p))
    if (inFlight.size >= 200) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
}))
const deadline = Date.now() + 120_000
let done = 0
while ((done = await stored()) < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
const s = (performance.now() - t0) / 1000
console.log(`${done} of ${total} reports stored through the hub's session in ${s.toFixed(2)} s = ${Math.round(done / s)} reports/s (${Math.round(2 * done / s)} readings/s); hub acknowledged ${hub.remote!.stats.acknowledged} messages to the broker`)
await Promise.all(devices.map((d) => d.close()))
await hub.close(); await broker.close(); await influx.stop(); await registry.dispose(); await rm(dir, { recursive: true, force: true })
