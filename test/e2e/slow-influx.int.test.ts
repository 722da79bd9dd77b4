import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { metricValue, scrape, startSlowProxy, type SlowProxy } from '../support/faults.js'

let influx: TestInflux
let proxy: SlowProxy
let dataDir: string
let hub: HubProcess
const devices: Device[] = []
const maxBufferedPoints = 1000

beforeAll(async () => {
  influx = await startTestInflux()
  proxy = await startSlowProxy(influx.url, 0)
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
  hub = await startHubProcess({ influxUrl: proxy.url, dataDir, writer: { maxBufferedPoints, maxBatchPoints: 500, maxBatchWaitMs: 300, requestTimeoutMs: 30_000 } })
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await hub?.kill('SIGKILL')
  await proxy?.close()
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('InfluxDB answers slowly', () => {
  it('keeps the hub\'s memory bounded, spooling the overflow, while the broker keeps acknowledging devices', async () => {
    const api = apiClient(hub.httpUrl)
    const deviceCount = 10
    const perDevice = 150
    const fleet = await seedFleet(api, { count: deviceCount })
    for (const d of fleet.devices) devices.push(await connectDevice({ url: hub.mqttUrl, deviceId: d.id, secret: d.secret }))
    await hub.collectGarbage()
    const heapBefore = metricValue(await scrape(hub.httpUrl), 'nodejs_heap_size_used_bytes')
    proxy.delayMs = 1500
    const base = Date.now() - 3_600_000

    let finished = false
    const ingest = Promise.all(devices.map(async (device) => {
      const inFlight = new Set<Promise<void>>()
      for (let i = 0; i < perDevice; i++) {
        const p = device.report({ temperature: 20 + (i % 9), humidity: 50 }, base + i * 1000)
        inFlight.add(p)
        void p.finally(() => inFlight.delete(p))
        if (inFlight.size >= 100) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    })).finally(() => { finished = true })

    // Watch the writer's memory while the flood lasts (bounded: at most 300 scrapes).
    let peakBuffered = 0
    for (let scrapes = 0; !finished && scrapes < 300; scrapes++) {
      peakBuffered = Math.max(peakBuffered, metricValue(await scrape(hub.httpUrl), 'trellis_store_buffered_points'))
    }
    await ingest
    const during = await scrape(hub.httpUrl)
    await hub.collectGarbage()
    const heapAfter = metricValue(await scrape(hub.httpUrl), 'nodejs_heap_size_used_bytes')
    console.log(`slow InfluxDB: peak points in memory ${peakBuffered} (bound ${maxBufferedPoints}), spooled ${metricValue(during, 'trellis_store_spooled_points_total')}, live heap ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MB`)

    expect(peakBuffered).toBeLessThanOrEqual(maxBufferedPoints)
    expect(metricValue(during, 'trellis_store_spooled_points_total')).toBeGreaterThan(0)
    expect(heapAfter).toBeLessThan(heapBefore + 32 * 1024 * 1024)

    // InfluxDB speeds up again: the spool drains and every reading is there once.
    proxy.delayMs = 0
    const total = deviceCount * perDevice
    await eventually(
      async () => (await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`))[0]?.count,
      (n) => n === total, { what: `${total} temperature points`, timeoutMs: 20_000 })
    const health = await eventually(() => api.get('/healthz'), (r) => r.body.status === 'ok', { what: 'the spool drained' })
    expect(health.body.spool.points).toBe(0)
  })
})
