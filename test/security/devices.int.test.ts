import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import mqtt, { type MqttClient } from 'mqtt'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually, nextEvent } from '../support/wait.js'
import { rawConnection, rawPackets, subackCodes } from '../support/mqtt.js'

// Hostile devices against a real hub: real broker over TCP, real influxd, registry on the run's PostgreSQL.
const ADMIN_TOKEN = 'trellis_admin_devices-test-admin-token-0123456789'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
let mqttPort: number
const open: Array<{ close (): unknown }> = []

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({
    influxUrl: influx.url,
    api: { adminToken: ADMIN_TOKEN },
    broker: { publishRate: { perSecond: 50, burst: 100 }, publishAbuse: { perSecond: 20, burst: 400 } },
  })
  api = apiClient(stack.httpUrl)
  mqttPort = Number(new URL(stack.mqttUrl).port)
})

afterAll(async () => {
  await Promise.all(open.splice(0).map(async (c) => { try { await c.close() } catch {} }))
  await stack?.close()
  await influx?.dispose()
})

/** A bare mqtt.js client that never reconnects; rejects with the CONNACK refusal. */
async function client (clientId: string, username: string, password: string): Promise<MqttClient> {
  const c = mqtt.connect(stack.mqttUrl, { clientId, username, password, reconnectPeriod: 0, connectTimeout: 5000 })
  open.push({ close: () => c.endAsync(true) })
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
    c.once('close', () => reject(new Error('closed before CONNACK')))
  })
  return c
}

async function device (d: { id: string, secret: string }): Promise<Device> {
  const dev = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 200 })
  open.push(dev)
  return dev
}

/** A command to `deviceId` as the hub's commands module sends it: in-process, QoS 1. */
function sendCommand (deviceId: string, id: string): void {
  stack.hub.broker.aedes.publish({ cmd: 'publish', topic: topics.commands(deviceId), payload: Buffer.from(JSON.stringify({ id, set: { power: true } })), qos: 1, retain: false, dup: false }, () => {})
}

/** Milliseconds from a report to the hub's latest state taking it: the ingest path, end to end. */
async function ingestLatency (dev: Device, value: number, ts: number): Promise<number> {
  const t0 = performance.now()
  const at = new Date(ts).toISOString()
  const seen = nextEvent<[{ kind: string, deviceId: string, readings?: Record<string, { ts: string }> }]>(stack.hub.state, 'readings',
    (e) => e.kind === 'state' && e.deviceId === dev.id && e.readings?.temperature?.ts === at)
  await dev.report({ temperature: value }, ts)
  await seen
  return performance.now() - t0
}

function connackCode (err: unknown): number | undefined {
  return (err as { code?: number }).code
}

describe('one device cannot read, spoof or take over another', () => {
  it("receives nothing of B's through B's commands, devices/+/telemetry, # or $SYS/# while B is active", async () => {
    const fleet = await seedFleet(api, { count: 2 })
    const [a, b] = fleet.devices
    const attacker = await client(a.id, a.id, a.secret)
    const received: string[] = []
    attacker.on('message', (topic) => received.push(topic))
    expect(await subackCodes(attacker, [topics.commands(b.id), 'devices/+/telemetry', '#', '$SYS/#', `$share/g/${topics.commands(b.id)}`, 'devices/+/commands'])).toEqual([128, 128, 128, 128, 128, 128])
    expect(await subackCodes(attacker, [topics.commands(a.id)])).toEqual([1])

    const victim = await device(b)
    const gotCommand = new Promise<void>((resolve) => victim.client.on('message', (t) => { if (t === topics.commands(b.id)) resolve() }))
    await victim.report({ temperature: 20 })
    sendCommand(b.id, 'for-b')
    await gotCommand
    // A sentinel to A itself, after B's traffic: once it arrives, anything of B's would have too.
    const sentinel = new Promise<void>((resolve) => attacker.on('message', (t) => { if (t === topics.commands(a.id)) resolve() }))
    sendCommand(a.id, 'sentinel')
    await sentinel
    expect(received).toEqual([topics.commands(a.id)])
    expect(stack.hub.broker.stats.subscribeDenied).toBeGreaterThanOrEqual(6)
  })

  it("changes nothing stored for B when A publishes to B's telemetry, and disconnects A, audited", async () => {
    const fleet = await seedFleet(api, { count: 2 })
    const [a, b] = fleet.devices
    const victim = await device(b)
    await victim.report({ temperature: 21 })
    await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${b.id}'`), (r) => r.length === 1)

    const commandsOfB: string[] = []
    victim.client.on('message', (topic, payload) => { if (topic === topics.commands(b.id)) commandsOfB.push(payload.toString()) })
    // Each attempt costs the attacker its connection, so each gets a fresh one.
    const spoofs: Array<[string, string, boolean]> = [
      [topics.telemetry(b.id), JSON.stringify({ readings: { temperature: 99 } }), false],
      [topics.presence(b.id), 'offline', true],
      [topics.commands(b.id), JSON.stringify({ id: 'spoofed', set: { power: false } }), false],
      [topics.acks(b.id), JSON.stringify({ id: 'x', status: 'ok' }), false],
    ]
    for (const [topic, payload, retain] of spoofs) {
      const attacker = await client(a.id, a.id, a.secret)
      const gone = new Promise<void>((resolve) => attacker.once('close', () => resolve()))
      attacker.publish(topic, payload, { qos: 1, retain })
      await gone
    }
    expect(stack.hub.broker.stats.publishDenied).toBeGreaterThanOrEqual(4)
    const genuine = new Promise<void>((resolve) => victim.client.on('message', (_t, p) => { if (p.toString().includes('genuine')) resolve() }))
    sendCommand(b.id, 'genuine')
    await genuine
    expect(commandsOfB.map((c) => JSON.parse(c).id)).toEqual(['genuine'])
    // Flushed past the attack: a later genuine reading of B lands, and it is still the only other one.
    await victim.report({ temperature: 22 })
    const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${b.id}'`), (r) => r.length === 2)
    expect(rows.map((r) => r.value)).toEqual([21, 22])
    const view = await api.get(`/v1/devices/${b.id}`, fleet.ownerToken)
    expect(view.body).toMatchObject({ online: true, state: { temperature: { value: 22 } } })
    const audit = await api.get(`/v1/audit?device=${a.id}`, fleet.makerToken)
    expect(audit.body.records.filter((r: { action: string }) => r.action === 'acl-violation')).toHaveLength(4)
    expect(audit.body.records).toContainEqual(expect.objectContaining({ action: 'acl-violation', actor: `device:${a.id}`, address: expect.stringContaining('127.0.0.1') }))
  })

  it('refuses a client-id takeover, while the device itself may replace its own session', async () => {
    const fleet = await seedFleet(api, { count: 2 })
    const [a, b] = fleet.devices
    const victim = await client(b.id, b.id, b.secret)
    expect(await subackCodes(victim, [topics.commands(b.id)])).toEqual([1])
    // B's id with A's (valid) secret, and B's id under A's username: both refused.
    await expect(client(b.id, b.id, a.secret)).rejects.toSatisfy((e) => connackCode(e) === 4)
    await expect(client(b.id, a.id, a.secret)).rejects.toSatisfy((e) => connackCode(e) === 2)
    const still = new Promise<void>((resolve) => victim.once('message', () => resolve()))
    sendCommand(b.id, 'still-b')
    await still
    // B reconnecting with its own secret takes over its own session.
    const replaced = new Promise<void>((resolve) => victim.once('close', () => resolve()))
    const again = await client(b.id, b.id, b.secret)
    await replaced
    expect(again.connected).toBe(true)
  })
})

describe('credentials lifecycle', () => {
  it('rotating a secret closes live sessions at once and the old secret stops working', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    const live = await client(d.id, d.id, d.secret)
    const closed = new Promise<void>((resolve) => live.once('close', () => resolve()))
    const rotated = await api.post(`/v1/devices/${d.id}/secret:rotate`, {}, fleet.makerToken)
    expect(rotated.status).toBe(200)
    await closed
    await expect(client(d.id, d.id, d.secret)).rejects.toSatisfy((e) => connackCode(e) === 4)
    const fresh = await client(d.id, d.id, rotated.body.secret)
    expect(fresh.connected).toBe(true)
    // Owners and other makers cannot rotate it.
    expect((await api.post(`/v1/devices/${d.id}/secret:rotate`, {}, fleet.ownerToken)).status).toBe(403)
  })

  it('a disabled device is disconnected and refused until enabled again', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    const live = await client(d.id, d.id, d.secret)
    const closed = new Promise<void>((resolve) => live.once('close', () => resolve()))
    expect((await api.post(`/v1/devices/${d.id}/disable`, {}, fleet.makerToken)).status).toBe(200)
    await closed
    await expect(client(d.id, d.id, d.secret)).rejects.toSatisfy((e) => connackCode(e) === 4)
    expect((await api.post(`/v1/devices/${d.id}/enable`, {}, fleet.makerToken)).status).toBe(200)
    expect((await client(d.id, d.id, d.secret)).connected).toBe(true)
  })

  it('an owner releases a device: it leaves their view and can be claimed again with the new code only', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    const dev = await device(d)
    await dev.report({ temperature: 30 }, Date.now() - 5000)
    await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.temperature?.value === 30)
    const released = await api.post(`/v1/devices/${d.id}/release`, {}, fleet.ownerToken)
    expect(released.status).toBe(200)
    expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).status).toBe(404)
    const next = await api.post('/v1/owners', { email: `next-${Date.now()}@example.com`, password: 'correct horse battery' })
    expect((await api.post('/v1/devices/claim', { claimCode: d.claimCode }, next.body.token)).status).toBe(404)
    const claimed = await api.post('/v1/devices/claim', { claimCode: released.body.claimCode }, next.body.token)
    expect(claimed.status).toBe(200)
    expect(claimed.body.id).toBe(d.id)
    // What the device reported for its previous owner is not the next owner's.
    expect(claimed.body.state).toEqual({})
    const from = new Date(Date.now() - 3_600_000).toISOString()
    const history = await api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${from}`, next.body.token)
    expect(history.status).toBe(200)
    expect(history.body.points).toEqual([])
    await dev.report({ temperature: 31 })
    const fresh = await eventually(() => api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${from}`, next.body.token), (r) => r.body.points?.length === 1)
    expect(fresh.body.points[0].value).toBe(31)
  })

  it('lists tokens without their secrets, and a revoked token stops working at once', async () => {
    const fleet = await seedFleet(api)
    const session = await api.post('/v1/sessions', { email: (await api.get('/v1/tokens', fleet.ownerToken)).status === 200 ? undefined : '', password: '' })
    expect(session.status).toBe(400)
    const listed = await api.get('/v1/tokens', fleet.ownerToken)
    expect(listed.status).toBe(200)
    expect(listed.body.tokens).toEqual([expect.objectContaining({ scope: 'owner', revokedAt: null })])
    expect(JSON.stringify(listed.body)).not.toContain(fleet.ownerToken)
    // Warm the cache, then revoke.
    expect((await api.get('/v1/devices', fleet.ownerToken)).status).toBe(200)
    const other = await seedFleet(api)
    expect((await api.delete(`/v1/tokens/${listed.body.tokens[0].id}`, other.ownerToken)).status).toBe(404)
    expect((await api.delete(`/v1/tokens/${listed.body.tokens[0].id}`, fleet.ownerToken)).status).toBe(200)
    expect((await api.get('/v1/devices', fleet.ownerToken)).status).toBe(401)
    // The platform admin may revoke anyone's.
    const makerTokens = await api.get('/v1/tokens', fleet.makerToken)
    expect((await api.delete(`/v1/tokens/${makerTokens.body.tokens[0].id}`, ADMIN_TOKEN)).status).toBe(200)
    expect((await api.get('/v1/models', fleet.makerToken)).status).toBe(401)
  })
})

describe('audit log', () => {
  it('records who, what, when and from where; the admin reads all, a maker only its own devices', async () => {
    const mine = await seedFleet(api, { makerName: 'Audited' })
    const theirs = await seedFleet(api, { makerName: 'Other' })
    await api.post(`/v1/devices/${mine.devices[0].id}/secret:rotate`, {}, mine.makerToken)
    await expect(client(theirs.devices[0].id, theirs.devices[0].id, 'wrong')).rejects.toBeTruthy()
    await api.post('/v1/sessions', { email: 'nobody@example.com', password: 'wrong password' })

    const all = await api.get('/v1/audit?limit=1000', ADMIN_TOKEN)
    expect(all.status).toBe(200)
    const actions = all.body.records.map((r: { action: string }) => r.action)
    for (const a of ['secret-rotated', 'auth-failed', 'login-failed', 'device-claimed']) expect(actions).toContain(a)
    const rotation = all.body.records.find((r: { action: string, deviceId: string }) => r.action === 'secret-rotated' && r.deviceId === mine.devices[0].id)
    expect(rotation).toMatchObject({ actor: `maker:${mine.makerId}`, address: expect.stringContaining('127.0.0.1'), at: expect.any(String) })

    const makers = await api.get('/v1/audit?limit=1000', mine.makerToken)
    const devices = new Set(makers.body.records.map((r: { deviceId: string }) => r.deviceId))
    expect(devices).toEqual(new Set([mine.devices[0].id]))
    // The maker sees its device was claimed, not by whom nor from where.
    expect(makers.body.records).toContainEqual(expect.objectContaining({ action: 'device-claimed', actor: 'owner', address: null }))
    expect(JSON.stringify(makers.body)).not.toContain(mine.ownerId)
  })
})

describe('limits under load', () => {
  it('rate-limits a flooding device without slowing the others\' ingest', async () => {
    const fleet = await seedFleet(api, { count: 3 })
    const [flooder, ...others] = fleet.devices
    const healthy = await Promise.all(others.map((d) => device(d)))
    const base = Date.now() - 60_000
    const reportAll = async (round: number, into: number[]) => {
      for (const h of healthy) into.push(await ingestLatency(h, round, base + round))
    }
    const baseline: number[] = []
    for (let i = 0; i < 20; i++) await reportAll(i, baseline)
    const flood = await client(flooder.id, flooder.id, flooder.secret)
    const floodClosed = new Promise<void>((resolve) => flood.once('close', () => resolve()))
    const before = stack.hub.broker.stats.publishDropped

    const latencies: number[] = []
    const started = Date.now()
    // Bounded: 5000 publishes, as fast as the socket takes them.
    for (let i = 0; i < 5000 && flood.connected; i++) flood.publish(topics.telemetry(flooder.id), `{"readings":{"temperature":${i % 100}}}`, { qos: 0 })
    for (let i = 20; i < 40; i++) await reportAll(i, latencies)
    await floodClosed
    const dropped = stack.hub.broker.stats.publishDropped - before
    // The flooder is cut off once it has dropped its abuse budget (400), well before it sends all 5000.
    expect(dropped).toBeGreaterThanOrEqual(400)
    expect(stack.hub.broker.stats.rateLimitDisconnects).toBeGreaterThanOrEqual(1)
    for (const h of others) {
      await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "device" = '${h.id}'`), (r) => r[0]?.count === 40, { what: `all 40 readings of ${h.id}` })
    }
    const stored = await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "device" = '${flooder.id}'`), () => true)
    const pct = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * q))]
    const p99 = pct(latencies, 0.99)
    console.info(`flood: ${dropped} of 5000 dropped before the flooder was cut off, flooder stored ${JSON.stringify(stored[0]?.count ?? 0)} points; healthy report-to-state latency without flood p50 ${pct(baseline, 0.5).toFixed(1)} ms p99 ${pct(baseline, 0.99).toFixed(1)} ms, during flood p50 ${pct(latencies, 0.5).toFixed(1)} ms p99 ${p99.toFixed(1)} ms; ${Date.now() - started} ms overall`)
    expect(p99).toBeLessThan(2000)
    const audit = await api.get(`/v1/audit?device=${flooder.id}`, ADMIN_TOKEN)
    expect(audit.body.records).toContainEqual(expect.objectContaining({ action: 'rate-limited' }))
  })

  // Last in the file: it spends 127.0.0.1's failed-authentication budget.
  it('keeps memory flat and a good device flowing through a burst of 2,000 bad-password connects', async () => {
    const fleet = await seedFleet(api, { count: 2 })
    const [good, target] = fleet.devices
    const reporter = await device(good)
    let stop = false
    const latencies: number[] = []
    let duringBurst = 0
    const reporting = (async () => {
      let i = 0
      // Keeps going after the burst until it has enough reports for a p99, however short the burst was.
      while ((!stop || i < 30) && i < 2000) {
        latencies.push(await ingestLatency(reporter, i % 50, Date.now() - 120_000 + i++))
        if (!stop) duringBurst++
        // Paced like a real device (25/s), under its publish rate limit: this is load, not synchronisation.
        await new Promise((resolve) => setTimeout(resolve, 40))
      }
      return i
    })()
    const connectionsBefore = stack.hub.broker.stats.connections
    // A full collection before each reading, so the difference is what the burst left behind, not garbage.
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    gc()
    const heapBefore = process.memoryUsage().heapUsed
    const rssBefore = process.memoryUsage().rss
    const started = performance.now()
    const codes = new Map<number | null, number>()
    // 2,000 attempts, 100 at a time: half on a real device id, half on ids that do not exist.
    for (let batch = 0; batch < 20; batch++) {
      if (process.env.DEBUG_BURST) console.info('batch', batch, (performance.now() - started).toFixed(0), JSON.stringify([...codes]))
      await Promise.all(Array.from({ length: 100 }, async (_, i) => {
        const id = i % 2 ? target.id : `dev-guess-${batch}-${i}`
        const raw = await rawConnection(mqttPort, rawPackets.connect({ clientId: id, username: id, password: `guess-${batch}-${i}` }))
        const code = await raw.connack
        codes.set(code, (codes.get(code) ?? 0) + 1)
        raw.socket.destroy()
      }))
    }
    const burstMs = performance.now() - started
    stop = true
    const reported = await reporting
    gc()
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore
    const rssGrowth = process.memoryUsage().rss - rssBefore
    latencies.sort((x, y) => x - y)
    const p50 = latencies[latencies.length >> 1]
    const p99 = latencies[Math.max(0, Math.floor(latencies.length * 0.99) - 1)]
    console.info(`auth burst: 2000 bad connects in ${burstMs.toFixed(0)} ms, CONNACK codes ${JSON.stringify([...codes])}, heap after GC ${(heapGrowth / 1e6).toFixed(1)} MB, rss ${(rssGrowth / 1e6).toFixed(1)} MB (change), good device ${latencies.length} reports, report-to-state p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`)
    expect([...codes.keys()].every((c) => c === 4 || c === 3)).toBe(true)
    expect(stack.hub.broker.stats.authThrottled).toBeGreaterThan(1500)
    // Retaining even 2 KB per refused connection would show as 4 MB.
    expect(heapGrowth).toBeLessThan(4e6)
    expect(stack.hub.broker.stats.connections).toBe(connectionsBefore)
    // The good device's readings went through while the burst was on, not only after it.
    expect(duringBurst).toBeGreaterThanOrEqual(3)
    // Every reading the good device sent during the burst is stored.
    await eventually(() => influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "device" = '${good.id}'`), (r) => r[0]?.count === reported, { what: `all ${reported} readings of the good device` })
    expect(p99).toBeLessThan(1000)
  })
})
