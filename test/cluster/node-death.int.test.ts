import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { startTestRedis, type TestRedis } from '../support/redis.js'
import { startTestHaproxy, type TestHaproxy } from '../support/haproxy.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { killMidIngest } from '../support/kill-mid-ingest.js'

// Two nodes, each a hub process of its own (so one can be SIGKILLed), behind haproxy, on one Redis, PostgreSQL and InfluxDB.
let influx: TestInflux
let redis: TestRedis
let db: TestDatabase
let haproxy: TestHaproxy | undefined
const dirs: string[] = []
const nodes: HubProcess[] = []
const devices: Device[] = []

beforeAll(async () => {
  ;[influx, redis, db] = await Promise.all([startTestInflux(), startTestRedis(), freshDatabase()])
  for (let i = 0; i < 2; i++) {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-node-'))
    dirs.push(dataDir)
    // Batches held 200 ms: at any moment some publishes are in flight, unacknowledged, for the kill to catch.
    nodes.push(await startHubProcess({ influxUrl: influx.url, dataDir, databaseUrl: db.url, redisUrl: redis.url, writer: { flushIntervalMs: 200 } }))
  }
  haproxy = await startTestHaproxy(nodes)
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await haproxy?.dispose()
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')))
  await db?.drop()
  await redis?.dispose()
  await influx?.dispose()
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

describe('a node of the cluster is SIGKILLed while devices publish QoS 1 through haproxy', () => {
  it('stores every acknowledged reading once: the devices reconnect through haproxy to the other node and re-send the rest; the dead node\'s devices go offline, and a command queued meanwhile reaches one when it is back', async () => {
    const deviceCount = 100
    const perDevice = 60
    const window = 10
    const fleet = await seedFleet(apiClient(haproxy!.httpUrl), { count: deviceCount + 1 })
    // One more device, on the node to be killed, that does not reconnect by itself.
    const held = fleet.devices.pop()!
    const heldClient = await mqtt.connectAsync(nodes[0].mqttUrl, { clientId: held.id, username: held.id, password: held.secret, reconnectPeriod: 0 })
    heldClient.on('error', () => {})
    const survivor = apiClient(nodes[1].httpUrl)
    await eventually(() => survivor.get(`/v1/devices/${held.id}`, fleet.ownerToken), (r) => r.body.online === true, { what: 'the held device online on the other node' })
    for (const d of fleet.devices) {
      devices.push(await connectDevice({ url: haproxy!.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 }))
    }
    const total = deviceCount * perDevice
    const { ingest, killed, acked } = killMidIngest(devices, { perDevice, window, kill: async () => await nodes[0].kill('SIGKILL') })
    expect(await killed).toBe('SIGKILL')
    const ackedBeforeKill = acked()
    expect(total - ackedBeforeKill.reduce((n, s) => n + s.length, 0)).toBeGreaterThan(0)

    await ingest
    for (const [d, device] of fleet.devices.entries()) {
      const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${device.id}'`), (r) => r.length === perDevice, { what: `all readings of device ${d}`, timeoutMs: 20_000 })
      const stored = new Set(rows.map((r) => r.time as number))
      expect(stored.size).toBe(rows.length)
      expect(ackedBeforeKill[d].filter((ts) => !stored.has(ts))).toEqual([])
    }
    const [{ count }] = await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`)
    expect(count).toBe(total)

    // The dead node said nothing: its device goes offline on the other node once the node's key expires (5 s).
    heldClient.end(true)
    await eventually(() => survivor.get(`/v1/devices/${held.id}`, fleet.ownerToken), (r) => r.body.online === false, { what: 'the dead node\'s device offline', timeoutMs: 15_000 })
    const queued = await survivor.post(`/v1/devices/${held.id}/commands?queue=true&ttl=10m`, { set: { targetTemperature: 16 } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    devices.push(await connectDevice({ url: haproxy!.mqttUrl, deviceId: held.id, secret: held.secret, handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) } }))
    const done = await eventually(() => survivor.get(`/v1/devices/${held.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending', { what: 'the queued command settled', timeoutMs: 15_000 })
    expect(done.body).toMatchObject({ status: 'ok', state: { targetTemperature: 16 } })
  })
})
