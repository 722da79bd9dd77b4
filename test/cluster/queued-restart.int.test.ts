import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { startTestRedis, type TestRedis } from '../support/redis.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Nodes that start over a command log holding a queued command each load it: one of them only may send it.
let influx: TestInflux
let redis: TestRedis
let db: TestDatabase
const nodes: TestStack[] = []
let device: Device | undefined

const thermostat = { name: 'thermo-q', capabilities: ['temperature', 'targetTemperature'] }

beforeAll(async () => {
  ;[influx, redis, db] = await Promise.all([startTestInflux(), startTestRedis(), freshDatabase()])
})

afterAll(async () => {
  await device?.close().catch(() => {})
  await Promise.all(nodes.map((n) => n.close()))
  await db?.drop()
  await redis?.dispose()
  await influx?.dispose()
})

describe('a queued command in a cluster started over its command log', () => {
  it('reaches the device once when three nodes loaded it from the log', async () => {
    const start = async () => { nodes.push(await startStack({ influxUrl: influx.url, redisUrl: redis.url, sql: db.open() })) }
    await start()
    const fleet = await seedFleet(apiClient(nodes[0].httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const queued = await apiClient(nodes[0].httpUrl).post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { targetTemperature: 17 } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    // Two more nodes start, as after a restart of the cluster: each restores the queue from the log.
    await start()
    await start()

    const received: number[] = []
    device = await connectDevice({ url: nodes[1].mqttUrl, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: (value: number) => { received.push(value); return { targetTemperature: value } } } })
    const api = apiClient(nodes[2].httpUrl)
    const done = await eventually(() => api.get(`/v1/devices/${d.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending', { what: 'the queued command settled', timeoutMs: 15_000 })
    expect(done.body).toMatchObject({ status: 'ok', state: { targetTemperature: 17 } })
    // A command through each node afterwards: by its ack, a second copy of the queued one would have come too.
    for (const [i, node] of nodes.entries()) {
      const sent = await apiClient(node.httpUrl).post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 20 + i } }, fleet.ownerToken)
      expect(sent.body).toMatchObject({ status: 'ok' })
    }
    expect(received).toEqual([17, 20, 21, 22])
  })
})
