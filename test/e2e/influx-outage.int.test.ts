import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import type { ManagedInfluxd } from '@trellis/hub'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { restartInflux } from '../support/faults.js'

let influx: TestInflux
let restarted: ManagedInfluxd | undefined
let restartedAgain: ManagedInfluxd | undefined
let memoryOnly: TestStack | undefined
let stack: TestStack
let api: ApiClient
let dataDir: string
const devices: Device[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
  stack = await startStack({ influxUrl: influx.url, dataDir, writer: { maxRetryDelayMs: 500 } })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await memoryOnly?.close()
  await restarted?.stop()
  await restartedAgain?.stop()
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('InfluxDB stops during steady ingest and comes back', () => {
  it('stores every reading exactly once, through the spool, and ends with the spool empty', async () => {
    const deviceCount = 20
    const perDevice = 60
    const fleet = await seedFleet(api, { count: deviceCount })
    for (const d of fleet.devices) devices.push(await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret }))
    const base = Date.now() - 3_600_000
    const sent = new Array<number>(deviceCount).fill(0)
    let stopped = false
    let outageOver = false
    let acknowledgedDuringOutage = 0
    // The last third of each device's readings waits for the outage, so it surely spans many of them.
    let outageStarted = () => {}
    const outage = new Promise<void>((resolve) => { outageStarted = resolve })

    // Each device reports in turn, awaiting each acknowledgement: a steady flow.
    const ingest = Promise.all(devices.map(async (device, d) => {
      for (let i = 0; i < perDevice; i++) {
        if (i === 40) await outage
        await device.report({ temperature: 20 + (i % 10), humidity: 40 + (i % 5) }, base + i * 1000)
        sent[d]++
        if (stopped && !outageOver) acknowledgedDuringOutage++
      }
    }))

    await eventually(() => Math.min(...sent), (n) => n >= 10, { what: 'ten readings from every device' })
    await influx.stop()
    stopped = true
    outageStarted()

    // Down: readings keep being acknowledged, because they are spooled.
    await eventually(() => acknowledgedDuringOutage, (n) => n >= 200, { what: 'readings acknowledged while InfluxDB is down' })
    const health = await api.get('/healthz')
    expect(health.status).toBe(503)
    expect(health.body).toMatchObject({ status: 'degraded', influx: 'down' })
    expect(health.body.spool.points).toBeGreaterThan(0)
    expect(stack.hub.writer.stats.spooled).toBeGreaterThan(0)

    restarted = await restartInflux(influx.dir, influx.port)
    outageOver = true
    await ingest

    const total = deviceCount * perDevice
    for (const capability of ['temperature', 'humidity']) {
      await eventually(
        async () => (await influxQuery(influx.url, `SELECT count("value") FROM "${capability}" WHERE "maker" = '${fleet.makerId}'`))[0]?.count,
        (n) => n === total, { what: `${total} ${capability} points`, timeoutMs: 20_000 })
    }
    // Exactly once, device by device: no reading lost, none doubled.
    const perSeries = await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}' GROUP BY "device"`)
    expect(perSeries).toHaveLength(deviceCount)
    expect(perSeries.every((row) => row.count === perDevice)).toBe(true)

    const after = await eventually(() => api.get('/healthz'), (r) => r.body.status === 'ok', { what: 'a healthy hub', timeoutMs: 20_000 })
    expect(after.body.spool).toMatchObject({ points: 0, bytes: 0 })
    expect(stack.hub.writer.spoolDepth.points).toBe(0)
    expect(stack.hub.writer.stats.replayed).toBeGreaterThan(0)
  })

  it('without a spool, does not acknowledge what it cannot hold: the device re-sends it once InfluxDB is back', async () => {
    memoryOnly = await startStack({ influxUrl: influx.url, writer: { maxBufferedPoints: 10, maxRetryDelayMs: 300 } })
    const fleet = await seedFleet(apiClient(memoryOnly.httpUrl), { count: 1 })
    const [d] = fleet.devices
    const device = await connectDevice({ url: memoryOnly.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 500 })
    devices.push(device)
    let disconnects = 0
    device.on('disconnect', () => { disconnects++ })
    await restarted!.stop()

    const base = Date.now() - 120_000
    let acknowledged = 0
    const reports = Array.from({ length: 30 }, (_, i) => device.report({ temperature: i, humidity: 50 }, base + i * 1000).then(() => { acknowledged++ }))
    // Memory holds 10 points (5 reports); the rest are refused: connection dropped, nothing acknowledged.
    await eventually(() => disconnects, (n) => n >= 1, { what: 'the hub dropping the connection of a device it cannot acknowledge' })
    expect(acknowledged).toBe(0)
    expect(memoryOnly.hub.writer.stats.buffered).toBeLessThanOrEqual(10)

    restartedAgain = await restartInflux(influx.dir, influx.port)
    await Promise.all(reports)
    await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "device" = '${d.id}'`), (r) => r[0]?.count === 30, { what: 'all 30 readings', timeoutMs: 20_000 })
  })
})
