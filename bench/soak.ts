/**
 * Bounded soak: a simulated fleet reports steadily through a hub (broker and
 * hub in one child process) while InfluxDB is stopped now and then and the
 * hub is killed or stopped and restarted. At the end it prints readings sent,
 * acknowledged and stored, and the hub's peak memory.
 *
 *   npx tsx --conditions=development bench/soak.ts [--minutes 10] [--devices 20] [--rate 5] [--seed 1]
 *
 * Everything binds 127.0.0.1 on ephemeral ports, in temporary folders that are
 * removed at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startInfluxd, type ManagedInfluxd } from '@trellis/hub'
import { startHubProcess, type HubProcess } from '../test/support/hub-process.js'
import { apiClient, seedFleet } from '../test/support/api.js'
import { influxQuery } from '../test/support/influx.js'
import { metricValue, scrape } from '../test/support/faults.js'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    devices: { type: 'string', default: '20' },
    rate: { type: 'string', default: '5' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
  },
})
const minutes = Number(args.minutes)
const deviceCount = Number(args.devices)
/** Reports per device per second; each report carries two readings. */
const rate = Number(args.rate)
let seed = Number(args.seed)
/** A small seeded generator, so a run can be repeated with --seed. */
const random = () => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
const between = (lo: number, hi: number) => lo + random() * (hi - lo)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`)

/** Most reports one device leaves unacknowledged before it skips a beat (a real device's buffer is finite). */
const maxPendingPerDevice = 2000
/** After the fleet stops: how long to wait for acknowledgements and for InfluxDB to hold everything. */
const settleMs = 120_000

async function main (): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'trellis-soak-'))
  const influxDir = path.join(root, 'influx')
  const hubDir = path.join(root, 'hub')
  let influx: ManagedInfluxd | null = await startInfluxd({ dataDir: influxDir, supervise: false })
  const influxPort = influx.port
  const influxUrl = influx.url
  let hub: HubProcess = await startHubProcess({ influxUrl, dataDir: hubDir })
  const devices: Device[] = []
  const counts = { sent: 0, acked: 0, failed: 0, skipped: 0, outages: 0, kills: 0, terms: 0 }
  let peakRss = 0
  let peakHeap = 0
  let peakSpool = 0

  try {
    const fleet = await seedFleet(apiClient(hub.httpUrl), { count: deviceCount })
    for (const d of fleet.devices) {
      devices.push(await connectDevice({ url: hub.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 200, maxReconnectDelayMs: 2000 }))
    }
    const idle = await scrape(hub.httpUrl)
    const idleRss = metricValue(idle, 'process_resident_memory_bytes')
    const idleHeap = metricValue(idle, 'nodejs_heap_size_used_bytes')
    log(`soak: ${deviceCount} devices x ${rate} reports/s for ${minutes} min (seed ${args.seed})`)
    const endAt = Date.now() + minutes * 60_000

    // The fleet: each device reports on its own timer, timestamps strictly increasing per device.
    const pending = devices.map(() => new Set<Promise<void>>())
    const lastTs = devices.map(() => 0)
    const all: Array<Promise<void>> = []
    const timers = devices.map((device, d) => setInterval(() => {
      if (pending[d].size >= maxPendingPerDevice) { counts.skipped++; return }
      const ts = lastTs[d] = Math.max(lastTs[d] + 1, Date.now())
      counts.sent++
      const p = device.report({ temperature: 20 + (counts.sent % 10), humidity: 50 }, ts).then(() => { counts.acked++ }, () => { counts.failed++ })
      pending[d].add(p)
      void p.finally(() => pending[d].delete(p))
      all.push(p)
    }, 1000 / rate))

    // Memory, sampled from the hub's own metrics (bounded: one sample every two seconds until the end).
    const sampler = setInterval(() => {
      void scrape(hub.httpUrl).then((text) => {
        peakRss = Math.max(peakRss, metricValue(text, 'process_resident_memory_bytes'))
        peakHeap = Math.max(peakHeap, metricValue(text, 'nodejs_heap_size_used_bytes'))
        peakSpool = Math.max(peakSpool, metricValue(text, 'trellis_spool_depth_points'))
      }, () => {})
    }, 2000)

    // The chaos: until the end, a fault every 15 to 45 s.
    while (Date.now() + 30_000 < endAt) {
      await sleep(between(15_000, 45_000))
      if (Date.now() + 20_000 > endAt) break
      const fault = random()
      if (fault < 0.5) {
        const downMs = between(5_000, 20_000)
        log(`InfluxDB down for ${(downMs / 1000).toFixed(0)} s`)
        counts.outages++
        await influx!.stop()
        influx = null
        await sleep(downMs)
        influx = await startInfluxd({ dataDir: influxDir, port: influxPort, supervise: false })
        log('InfluxDB back')
      } else {
        const signal = fault < 0.8 ? 'SIGKILL' : 'SIGTERM'
        log(`hub ${signal === 'SIGKILL' ? 'killed (SIGKILL)' : 'stopped (SIGTERM)'} and restarted`)
        if (signal === 'SIGKILL') counts.kills++
        else counts.terms++
        const { mqttPort, httpPort } = hub
        await hub.kill(signal)
        hub = await startHubProcess({ influxUrl, dataDir: hubDir, mqttPort, httpPort })
      }
    }
    await sleep(Math.max(0, endAt - Date.now()))
    for (const t of timers) clearInterval(t)
    log(`fleet stopped; waiting up to ${settleMs / 1000} s for acknowledgements and storage`)

    const settleBy = Date.now() + settleMs
    let settleTimer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled(all), new Promise((resolve) => { settleTimer = setTimeout(resolve, settleMs) })])
    clearTimeout(settleTimer)
    const stored = async () => {
      const rows = await influxQuery(influxUrl, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`).catch(() => [])
      return (rows[0]?.count as number | undefined) ?? 0
    }
    let storedCount = await stored()
    while (storedCount < counts.sent && Date.now() < settleBy) {
      await sleep(500)
      storedCount = await stored()
    }
    clearInterval(sampler)
    const health = await apiClient(hub.httpUrl).get('/healthz')

    console.log('')
    console.log(`faults:        ${counts.outages} InfluxDB outages, ${counts.kills} hub SIGKILLs, ${counts.terms} hub SIGTERMs`)
    console.log(`sent:          ${counts.sent} reports (${counts.sent * 2} readings); ${counts.skipped} beats skipped with ${maxPendingPerDevice} unacknowledged`)
    console.log(`acknowledged:  ${counts.acked}  (failed ${counts.failed}, unsettled ${counts.sent - counts.acked - counts.failed})`)
    console.log(`stored:        ${storedCount} temperature points (one per report)`)
    console.log(`lost:          ${counts.sent - storedCount}   duplicated: ${Math.max(0, storedCount - counts.sent)}`)
    const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`
    console.log(`peak memory:   RSS ${mb(peakRss)}, heap used ${mb(peakHeap)} (hub process, sampled every 2 s; idle at start: RSS ${mb(idleRss)}, heap ${mb(idleHeap)})`)
    console.log(`spool:         peak ${peakSpool} points; at the end ${health.body.spool?.points} points, hub ${health.body.status}`)
    process.exitCode = storedCount === counts.sent ? 0 : 1
  } finally {
    await Promise.all(devices.map((d) => d.close().catch(() => {})))
    await hub.kill('SIGTERM').catch(() => {})
    await influx?.stop()
    await rm(root, { recursive: true, force: true })
  }
}

await main()
