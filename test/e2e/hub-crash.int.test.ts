import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { restartInflux } from '../support/faults.js'
import { killMidIngest } from '../support/kill-mid-ingest.js'
import type { ManagedInfluxd } from '@trellis/hub'

let influx: TestInflux
let dataDir: string
let hub: HubProcess | undefined
let restartedInflux: ManagedInfluxd | undefined
const devices: Device[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await hub?.kill('SIGKILL')
  await restartedInflux?.stop()
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

async function storedTimes (deviceId: string): Promise<number[]> {
  const rows = await influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${deviceId}'`)
  return rows.map((r) => r.time as number)
}

describe('the hub process is killed mid-ingest and restarted', () => {
  it('stores every reading a device sent: those acknowledged before the kill, and those re-sent after it', async () => {
    // Batches held 200 ms: at any moment some publishes are in flight, unacknowledged, for the kill to catch.
    hub = await startHubProcess({ influxUrl: influx.url, dataDir, writer: { flushIntervalMs: 200 } })
    const api = apiClient(hub.httpUrl)
    const deviceCount = 8
    const perDevice = 150
    const window = 20
    const fleet = await seedFleet(api, { count: deviceCount })
    for (const d of fleet.devices) {
      devices.push(await connectDevice({ url: hub.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 }))
    }
    const total = deviceCount * perDevice
    const dying = hub
    const { ingest, killed, acked } = killMidIngest(devices, { perDevice, window, kill: async () => await dying.kill('SIGKILL') })
    expect(await killed).toBe('SIGKILL')
    const { mqttPort, httpPort } = dying
    const ackedBeforeKill = acked()
    const notYetAcked = total - ackedBeforeKill.reduce((n, s) => n + s.length, 0)
    expect(notYetAcked).toBeGreaterThan(0)

    hub = await startHubProcess({ influxUrl: influx.url, dataDir, mqttPort, httpPort })
    await ingest

    for (const [d, device] of fleet.devices.entries()) {
      const stored = new Set(await eventually(() => storedTimes(device.id), (t) => t.length === perDevice, { what: `all readings of device ${d}`, timeoutMs: 20_000 }))
      expect(ackedBeforeKill[d].filter((ts) => !stored.has(ts))).toEqual([])
    }
    const [{ count }] = await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`)
    expect(count).toBe(total)
  })

  it('exits cleanly on SIGTERM within its deadline, and what it had is stored after the next start', async () => {
    const { mqttPort, httpPort } = hub!
    const api = apiClient(hub!.httpUrl)
    const fleet = await seedFleet(api, { count: 2 })
    const local: Device[] = []
    for (const d of fleet.devices) {
      const device = await connectDevice({ url: hub!.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 })
      local.push(device)
      devices.push(device)
    }
    const base = Date.now() - 1_800_000
    const reports = local.flatMap((device) => Array.from({ length: 200 }, (_, i) => device.report({ temperature: i % 100 }, base + i * 1000)))
    await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`), (r) => (r[0]?.count as number) > 0, { what: 'the first readings stored' })
    const started = Date.now()
    expect(await hub!.kill('SIGTERM')).toBe(0)
    expect(Date.now() - started).toBeLessThan(15_000)

    hub = await startHubProcess({ influxUrl: influx.url, dataDir, mqttPort, httpPort })
    await Promise.all(reports)
    await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`), (r) => r[0]?.count === 400, { what: 'all 400 readings', timeoutMs: 20_000 })
    const health = await eventually(() => apiClient(hub!.httpUrl).get('/healthz'), (r) => r.body.status === 'ok', { what: 'a healthy hub' })
    expect(health.body.spool.points).toBe(0)
  })

  it('keeps spooled readings through a SIGKILL while InfluxDB is down, starts without InfluxDB, and replays them before reporting healthy', async () => {
    const { mqttPort, httpPort } = hub!
    const api = apiClient(hub!.httpUrl)
    const fleet = await seedFleet(api, { count: 3 })
    const local: Device[] = []
    for (const d of fleet.devices) {
      const device = await connectDevice({ url: hub!.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 })
      local.push(device)
      devices.push(device)
    }
    await influx.stop()
    const base = Date.now() - 900_000
    // Acknowledged with InfluxDB down: so they are on disk, in the spool.
    await Promise.all(local.flatMap((device) => Array.from({ length: 50 }, (_, i) => device.report({ temperature: i % 100 }, base + i * 1000))))
    const spooled = await api.get('/healthz')
    expect(spooled.body).toMatchObject({ status: 'degraded', influx: 'down' })
    expect(spooled.body.spool.points).toBeGreaterThanOrEqual(150)

    expect(await hub!.kill('SIGKILL')).toBe('SIGKILL')
    hub = await startHubProcess({ influxUrl: influx.url, dataDir, mqttPort, httpPort })
    const waiting = await apiClient(hub.httpUrl).get('/healthz')
    expect(waiting.body.status).toBe('degraded')
    expect(waiting.body.spool.points).toBeGreaterThanOrEqual(150)

    restartedInflux = await restartInflux(influx.dir, influx.port)
    await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`), (r) => r[0]?.count === 150, { what: 'the 150 spooled readings', timeoutMs: 20_000 })
    const healthy = await eventually(() => apiClient(hub!.httpUrl).get('/healthz'), (r) => r.body.status === 'ok', { what: 'a healthy hub' })
    expect(healthy.body.spool.points).toBe(0)
  })
})
