import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import type { ClusterBus } from '../../hub/src/cluster/cluster-bus.js'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { startTestRedis, type TestRedis } from '../support/redis.js'
import { startTestHaproxy, type TestHaproxy } from '../support/haproxy.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually, nextEvent } from '../support/wait.js'
import { openSse, type SseStream } from '../support/sse.js'
import { testLogger } from '../support/stack.js'
import { LeaderElection } from '../../hub/src/cluster/leader.js'

// Three nodes in this process, each its own broker, hub and ports, sharing one Redis, PostgreSQL database and InfluxDB.
let influx: TestInflux
let redis: TestRedis
let db: TestDatabase
let haproxy: TestHaproxy
const nodes: TestStack[] = []
const devices: Device[] = []
const streams: SseStream[] = []

const thermostat = { name: 'thermo-1', capabilities: ['temperature', 'targetTemperature', 'power'] }

beforeAll(async () => {
  ;[influx, redis, db] = await Promise.all([startTestInflux(), startTestRedis(), freshDatabase()])
  // One at a time: the first migrates the database.
  // Audit pruning every 300 ms, so the test of who prunes need not wait an hour.
  for (let i = 0; i < 3; i++) nodes.push(await startStack({ influxUrl: influx.url, redisUrl: redis.url, sql: db.open(), audit: { pruneIntervalMs: 300 } }))
  haproxy = await startTestHaproxy(nodes)
})

afterAll(async () => {
  for (const s of streams) s.close()
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await haproxy?.dispose()
  await Promise.all(nodes.map((n) => n.close()))
  await db?.drop()
  await redis?.dispose()
  await influx?.dispose()
})

async function connectThermostat (node: TestStack, d: { id: string, secret: string }): Promise<Device> {
  const device = await connectDevice({ url: node.mqttUrl, deviceId: d.id, secret: d.secret, capabilities: thermostat.capabilities as never })
  devices.push(device)
  device.onCommand('targetTemperature', (value: number) => ({ targetTemperature: value }))
  device.onCommand('power', () => {})
  return device
}

describe('a cluster of three nodes on one Redis and PostgreSQL', () => {
  it('commands a device connected to node A through node C\'s API, and answers with its ack', async () => {
    const [a, , c] = nodes
    const fleet = await seedFleet(apiClient(a.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    await connectThermostat(a, d)
    for (const node of nodes) await eventually(() => node.hub.state.get(d.id)?.online, (online) => online === true, { what: `${d.id} online on every node` })

    const sent = await apiClient(c.httpUrl).post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 19 } }, fleet.ownerToken)
    expect(sent.status).toBe(200)
    expect(sent.body).toMatchObject({ device: d.id, status: 'ok', state: { targetTemperature: 19 } })
    // The command log is shared: node B reads the same record (written within the log's flush interval).
    await eventually(() => apiClient(nodes[1].httpUrl).get(`/v1/devices/${d.id}/commands/${sent.body.id}`, fleet.ownerToken), (r) => r.body.status === 'ok', { what: 'the ok on node B' })
    // Nobody dead-lettered the ack that reached the nodes which had not sent the command.
    for (const node of nodes) expect(node.hub.deadLetters.recent()).toEqual([])
  })

  it('carries readings of a device on node A to an owner\'s live stream on node B, stored once', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(b.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const stream = await openSse(`${b.httpUrl}/v1/stream`, fleet.ownerToken)
    streams.push(stream)
    await stream.next((e) => e.event === 'ready')
    const device = await connectThermostat(a, d)
    await device.report({ temperature: 22.5 })
    const state = await stream.next((e) => e.event === 'state' && e.data.device === d.id)
    expect(state.data.readings.temperature.value).toBe(22.5)
    // Each node reads the same latest state.
    for (const node of nodes) await eventually(() => node.hub.state.get(d.id)?.readings.get('temperature')?.value, (v) => v === 22.5)
    // Only node A ingested it: one point, not one per node.
    const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${d.id}'`), (r) => r.length >= 1)
    expect(rows).toHaveLength(1)
    for (const node of nodes) await eventually(() => node.hub.writer.stats.buffered, (n) => n === 0)
    expect((await influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${d.id}'`))).toHaveLength(1)
  })

  it('disconnects a device\'s first connection when the same client id connects to another node', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(a.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const first = await mqtt.connectAsync(a.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()))
    const second = await mqtt.connectAsync(b.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
    try {
      await closed
      expect(second.connected).toBe(true)
      await eventually(() => b.hub.state.get(d.id)?.online, (online) => online === true)
    } finally {
      first.end(true)
      await second.endAsync()
    }
  })

  it('fires a per-second schedule once a second across the cluster, from the leader only', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(b.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const device = await connectThermostat(a, d)
    let received = 0
    device.onCommand('power', () => { received++ })
    for (const node of nodes) await eventually(() => node.hub.state.get(d.id)?.online, (online) => online === true)
    expect(nodes.filter((n) => n.hub.leader!.isLeader)).toHaveLength(1)

    const created = await apiClient(b.httpUrl).post('/v1/schedules', { deviceId: d.id, cron: '* * * * * *', command: { set: { power: true } } }, fleet.ownerToken)
    expect(created.status).toBe(201)
    const runsOf = () => apiClient(nodes[2].httpUrl).get(`/v1/schedules/${created.body.id}/runs`, fleet.ownerToken)
    const runs = await eventually(runsOf, (r) => (r.body.runs?.length ?? 0) >= 4, { what: 'four runs', timeoutMs: 15_000 })
    await apiClient(a.httpUrl).delete(`/v1/schedules/${created.body.id}`, fleet.ownerToken)
    const seconds = runs.body.runs.map((r: { firedAt: string }) => Math.floor(Date.parse(r.firedAt) / 1000))
    // One run per second: no second fired by two nodes.
    expect(new Set(seconds).size).toBe(seconds.length)
    await eventually(() => received, (n) => n >= seconds.length)
    expect(received).toBeLessThanOrEqual(seconds.length + 1) // the run under way when the list was read
  })
})

describe('automations in the cluster', () => {
  it('fires a rule created on node C once for a reading ingested on node A, and once for a presence change every node hears', async () => {
    const [a, b, c] = nodes
    const fleet = await seedFleet(apiClient(c.httpUrl), { model: thermostat, count: 2 })
    const [sensor, heater] = fleet.devices
    const sensorDevice = await connectThermostat(a, sensor)
    const heaterDevice = await connectThermostat(b, heater)
    const powerCommands: boolean[] = []
    heaterDevice.onCommand('power', (on: boolean) => { powerCommands.push(on) })
    for (const node of nodes) await eventually(() => node.hub.state.get(heater.id)?.online, (online) => online === true, { what: 'the heater online on every node' })

    const api = apiClient(c.httpUrl)
    const hot = await api.post('/v1/automations', {
      name: 'heater off when it is warm',
      trigger: { type: 'reading', deviceId: sensor.id, capability: 'temperature', op: 'above', value: 25 },
      actions: [{ deviceId: heater.id, command: { set: { power: false } } }],
      cooldownSeconds: 0,
    }, fleet.ownerToken)
    expect(hot.status).toBe(201)
    const gone = await api.post('/v1/automations', {
      name: 'heater on when the sensor drops off',
      trigger: { type: 'presence', deviceId: sensor.id, online: false },
      actions: [{ deviceId: heater.id, command: { set: { power: true } } }],
      cooldownSeconds: 0,
    }, fleet.ownerToken)
    expect(gone.status).toBe(201)
    const runsOf = async (id: string) => (await apiClient(b.httpUrl).get(`/v1/automations/${id}/runs`, fleet.ownerToken)).body.runs as Array<{ outcome: string }>

    // Node A, where the sensor's reading is ingested, learns of the rule made on node C.
    await eventually(async () => {
      await sensorDevice.report({ temperature: 20 })
      await sensorDevice.report({ temperature: 30 })
      return await runsOf(hot.body.id)
    }, (runs) => runs.length >= 1, { what: 'the reading rule fired', timeoutMs: 10_000 })
    await eventually(() => powerCommands.filter((on) => !on).length, (n) => n >= 1, { what: 'the heater switched off' })

    await sensorDevice.close()
    const presenceRuns = await eventually(() => runsOf(gone.body.id), (runs) => runs.length >= 1, { what: 'the presence rule fired' })
    await eventually(() => powerCommands.filter((on) => on).length, (n) => n >= 1, { what: 'the heater switched on' })
    // Every node heard the sensor go offline; one fired. Let the other nodes' would-be runs land before counting.
    for (const node of nodes) await eventually(() => node.hub.state.get(sensor.id)?.online, (online) => online === false)
    await eventually(() => runsOf(hot.body.id), () => true)
    expect(presenceRuns.filter((r) => r.outcome === 'fired')).toHaveLength(1)
    expect((await runsOf(gone.body.id)).filter((r) => r.outcome === 'fired')).toHaveLength(1)
    expect(powerCommands.filter((on) => on)).toHaveLength(1)
  })
})

describe('queued commands in the cluster', () => {
  it('delivers a command queued through node B when the device comes back on node A', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(b.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const queued = await apiClient(b.httpUrl).post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { targetTemperature: 17 } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    // Handlers given at connect exist before the queued command arrives.
    devices.push(await connectDevice({ url: a.mqttUrl, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) } }))
    const done = await eventually(() => apiClient(b.httpUrl).get(`/v1/devices/${d.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending', { what: 'the queued command settled', timeoutMs: 15_000 })
    expect(done.body).toMatchObject({ status: 'ok', state: { targetTemperature: 17 } })
  })
})

describe('a registry change on one node reaches every node', () => {
  // Each node keeps devices, models and tokens in memory; a change made through one node must not leave the others trusting the old.
  const promptly = { timeoutMs: 3000 }

  it('ends a former owner\'s reach through node A once they release the device through node B', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(a.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    await connectThermostat(a, d)
    await eventually(() => a.hub.state.get(d.id)?.online, (online) => online === true, { what: `${d.id} online on node A` })
    // Node A has the device in memory, owned.
    expect((await apiClient(a.httpUrl).post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 20 } }, fleet.ownerToken)).status).toBe(200)

    expect((await apiClient(b.httpUrl).post(`/v1/devices/${d.id}/release`, {}, fleet.ownerToken)).status).toBe(200)
    const refused = await eventually(() => apiClient(a.httpUrl).post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 21 } }, fleet.ownerToken), (r) => r.status !== 200, { what: 'the former owner\'s command refused by node A', ...promptly })
    expect(refused.status).toBe(404)
    expect((await apiClient(a.httpUrl).get(`/v1/devices/${d.id}`, fleet.ownerToken)).status).toBe(404)
  })

  it('refuses on node A a token revoked through node B', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(a.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    // Node A has the token in memory.
    expect((await apiClient(a.httpUrl).get(`/v1/devices/${d.id}`, fleet.ownerToken)).status).toBe(200)
    const tokens = await apiClient(b.httpUrl).get('/v1/tokens', fleet.ownerToken)
    expect(tokens.status).toBe(200)
    for (const t of tokens.body.tokens ?? tokens.body) expect((await apiClient(b.httpUrl).delete(`/v1/tokens/${t.id}`, fleet.ownerToken)).status).toBeLessThan(300)
    const refused = await eventually(() => apiClient(a.httpUrl).get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.status !== 200, { what: 'the revoked token refused by node A', ...promptly })
    expect(refused.status).toBe(401)
  })

  it('closes a device\'s session on node A and refuses its old secret there once the maker rotates it through node B', async () => {
    const [a, b] = nodes
    const fleet = await seedFleet(apiClient(a.httpUrl), { model: thermostat })
    const [d] = fleet.devices
    const client = await mqtt.connectAsync(a.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
    client.on('error', () => {})
    const closed = nextEvent(client, 'close', () => true, promptly.timeoutMs)
    const rotated = await apiClient(b.httpUrl).post(`/v1/devices/${d.id}/secret:rotate`, {}, fleet.makerToken)
    expect(rotated.status).toBe(200)
    await closed
    const again = await mqtt.connectAsync(a.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 }).then((c) => { c.end(true); return 'connected' }, (err: Error) => err.message)
    expect(again).toMatch(/Not authorized|Bad username or Password/i)
    const fresh = await mqtt.connectAsync(a.mqttUrl, { clientId: d.id, username: d.id, password: rotated.body.secret, reconnectPeriod: 0 })
    fresh.end(true)
  })
})

describe('rate limits across the cluster', () => {
  it('throttles a login flood spread over the nodes as one', async () => {
    const email = `flooded-${Date.now()}@example.com`
    expect((await apiClient(nodes[0].httpUrl).post('/v1/owners', { email, password: 'correct horse battery' })).status).toBe(201)
    // 10 failures per address and account, the default burst: spread over three nodes, each node alone would see 5 of 15.
    const statuses: number[] = []
    for (let i = 0; i < 15; i++) {
      statuses.push((await apiClient(nodes[i % 3].httpUrl).post('/v1/sessions', { email, password: `wrong guess ${i}` })).status)
    }
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(11)
    expect(statuses.slice(-3)).toEqual([429, 429, 429])
  })

  it('throttles failed MQTT logins for one client id spread over the nodes as one', async () => {
    // 10 failures per client id, the default burst: spread over three nodes, each node alone would see 5 of 15.
    const deviceId = `guessed-${Date.now()}`
    const codes: number[] = []
    for (let i = 0; i < 15; i++) {
      const refused = await mqtt.connectAsync(nodes[i % 3].mqttUrl, { clientId: deviceId, username: deviceId, password: `guess ${i}`, reconnectPeriod: 0 })
        .then(async (client) => { await client.endAsync(); return 0 }, (err: { code?: number }) => err.code ?? -1)
      codes.push(refused)
    }
    // 4: bad credentials, checked; 3: refused unchecked, over the budget.
    expect(codes.filter((c) => c === 4).length).toBeLessThanOrEqual(11)
    expect(codes.slice(-3)).toEqual([3, 3, 3])
  })
})

describe('cluster-wide duties', () => {
  it('prunes the audit log on the leader only', async () => {
    const calls: number[] = [0, 0, 0]
    const originals = nodes.map((n) => n.hub.registry.pruneAudit)
    nodes.forEach((n, i) => {
      n.hub.registry.pruneAudit = async (...args) => { calls[i]++; return await originals[i].apply(n.hub.registry, args) }
    })
    try {
      await eventually(() => calls.reduce((a, b) => a + b, 0), (n) => n >= 6, { what: 'six prunings', timeoutMs: 10_000 })
      const leader = nodes.findIndex((n) => n.hub.leader!.isLeader)
      expect(calls.filter((n, i) => i !== leader && n > 0)).toEqual([])
    } finally {
      nodes.forEach((n, i) => { n.hub.registry.pruneAudit = originals[i] })
    }
  })
})

describe('behind haproxy', () => {
  it('spreads devices over the nodes, and commands and streams them all through one address', async () => {
    const api = apiClient(haproxy.httpUrl)
    const fleet = await seedFleet(api, { model: thermostat, count: 3 })
    const stream = await openSse(`${haproxy.httpUrl}/v1/stream`, fleet.ownerToken)
    streams.push(stream)
    await stream.next((e) => e.event === 'ready')
    const connected: Device[] = []
    for (const d of fleet.devices) connected.push(await connectThermostat({ mqttUrl: haproxy.mqttUrl } as TestStack, d))
    // Round robin: one device on each node.
    const holders = fleet.devices.map((d) => nodes.findIndex((n) => (n.hub.bus as ClusterBus).isConnectedHere(d.id)))
    expect([...holders].sort()).toEqual([0, 1, 2])
    for (const d of fleet.devices) {
      await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.online === true, { what: `${d.id} online` })
      const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 18 } }, fleet.ownerToken)
      expect(sent.body).toMatchObject({ device: d.id, status: 'ok' })
    }
    await Promise.all(connected.map((device, i) => device.report({ temperature: 20 + i })))
    for (const [i, d] of fleet.devices.entries()) {
      const state = await stream.next((e) => e.event === 'state' && e.data.device === d.id && e.data.readings.temperature !== undefined)
      expect(state.data.readings.temperature.value).toBe(20 + i)
    }
  })
})

describe('the leader lock', () => {
  it('passes to another node within its time to live when the leader stops renewing it', async () => {
    const options = { key: `test:leader:${Date.now()}`, ttlMs: 1000 }
    const first = new LeaderElection(redis.url, 'first', testLogger(), options)
    const second = new LeaderElection(redis.url, 'second', testLogger(), options)
    try {
      first.start()
      await eventually(() => first.isLeader, (v) => v)
      second.start()
      // Its death, as far as Redis can tell: no renewal, no release.
      ;(first as unknown as { closed: boolean }).closed = true
      const stoppedAt = Date.now()
      await eventually(() => second.isLeader, (v) => v, { timeoutMs: 5000 })
      expect(Date.now() - stoppedAt).toBeLessThan(3000)
      expect(second.term).toBeGreaterThan(1)
    } finally {
      await Promise.all([first.close(), second.close()])
    }
  })
})
