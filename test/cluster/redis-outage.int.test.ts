import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startTestRedis, type TestRedis } from '../support/redis.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient, seedFleet } from '../support/api.js'
import { databaseForDir } from '../support/postgres.js'
import { eventually, nextEvent } from '../support/wait.js'
import { metricValue, scrape } from '../support/faults.js'

// One cluster node in a process of its own, and its Redis going away under it: a restart, a failover.
let influx: TestInflux
let redis: TestRedis
let dataDir: string
let node: HubProcess | undefined
let other: HubProcess | undefined
let otherDir: string
const devices: Device[] = []

beforeAll(async () => {
  ;[influx, redis] = await Promise.all([startTestInflux(), startTestRedis()])
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-redis-outage-'))
  otherDir = await mkdtemp(path.join(tmpdir(), 'trellis-redis-outage-b-'))
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await node?.kill('SIGKILL')
  await other?.kill('SIGKILL')
  if (otherDir) await rm(otherDir, { recursive: true, force: true })
  await redis?.dispose()
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const stored = async (makerId: string) =>
  ((await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${makerId}'`))[0]?.count as number | undefined) ?? 0

describe('a cluster node whose Redis goes away', () => {
  it('keeps serving its devices through the outage, shares state again once Redis is back, and stops cleanly without it', async () => {
    node = await startHubProcess({ influxUrl: influx.url, dataDir, redisUrl: redis.url })
    // A second node on the same database and Redis: commands through it cross Redis to the device on the first.
    other = await startHubProcess({ influxUrl: influx.url, dataDir: otherDir, redisUrl: redis.url, databaseUrl: (await databaseForDir(dataDir)).url })
    const api = apiClient(node.httpUrl)
    const fleet = await seedFleet(api, { count: 2 })
    const [d, late] = fleet.devices
    const device = await connectDevice({ url: node.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000, handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) } })
    devices.push(device)
    const base = Date.now() - 600_000
    expect((await api.get('/healthz')).body).toMatchObject({ status: 'ok', redis: 'up' })
    expect(metricValue(await scrape(node.httpUrl), 'trellis_cluster_redis_up')).toBe(1)

    await redis.stop()
    // Each reconnect attempt fails with an `error`: unheard, one took the whole node down.
    await Promise.all(Array.from({ length: 20 }, (_, i) => device.report({ temperature: 20 + i % 5 }, base + i * 1000)))
    await eventually(() => stored(fleet.makerId), (n) => n === 20, { what: '20 readings stored during the outage', timeoutMs: 20_000 })
    expect(node.child.exitCode).toBe(null)
    expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.online).toBe(true)
    // Degraded, not unavailable: a balancer must not take every node out while each still serves its own devices.
    const health = await eventually(() => api.get('/healthz'), (r) => r.body.redis === 'down', { what: 'the node telling Redis is down' })
    expect(health).toMatchObject({ status: 200, body: { status: 'degraded', influx: 'up', redis: 'down' } })
    expect(metricValue(await scrape(node.httpUrl), 'trellis_cluster_redis_up')).toBe(0)
    // A session lives in Redis: a device that connects now is not let in.
    await expect(connectDevice({ url: node.mqttUrl, deviceId: late.id, secret: late.secret, connectTimeoutMs: 3_000 })).rejects.toThrow(/could not connect/)
    // Its owner releases it through the other node: the news cannot cross Redis now, and this node has it cached.
    expect((await apiClient(other.httpUrl).post(`/v1/devices/${late.id}/release`, {}, fleet.ownerToken)).status).toBe(200)

    await redis.restart()
    const watcher = new Redis(redis.url)
    try {
      await watcher.subscribe('trellis:state')
      // What the node changes now reaches the other nodes again: once its connections are back, a reading is published.
      await eventually(async () => {
        const shared = nextEvent<[string, string]>(watcher, 'message', (_channel, message) => message.includes(d.id), 1_000).then(() => true, () => false)
        await device.report({ temperature: 30 })
        return await shared
      }, (ok) => ok, { what: 'a state change shared through Redis after it came back', timeoutMs: 20_000 })
    } finally {
      watcher.disconnect()
    }
    await eventually(() => api.get('/healthz'), (r) => r.body.status === 'ok' && r.body.redis === 'up', { what: 'a healthy node with Redis back' })
    // Back on Redis, this node reads its devices again: the former owner no longer sees the released one.
    await eventually(() => api.post(`/v1/devices/${late.id}/commands?wait=0`, { set: { targetTemperature: 18 } }, fleet.ownerToken),
      (r) => r.status === 404, { what: 'the released device refused to its former owner through this node', timeoutMs: 10_000 })
    devices.push(await connectDevice({ url: node.mqttUrl, deviceId: late.id, secret: late.secret }))
    // While Redis was away the other node took this one for dead and its devices for offline: once back, it hears them again.
    const across = await eventually(() => apiClient(other!.httpUrl).post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 19 } }, fleet.ownerToken),
      (r) => r.status !== 409, { what: 'the device commandable through the other node', timeoutMs: 10_000 })
    expect(across).toMatchObject({ status: 200, body: { status: 'ok', state: { targetTemperature: 19 } } })

    await redis.stop()
    const started = Date.now()
    expect(await node.kill('SIGTERM')).toBe(0)
    expect(Date.now() - started).toBeLessThan(8_000)
  })
})
