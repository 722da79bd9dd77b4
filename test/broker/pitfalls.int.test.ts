import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import type { Client } from 'aedes'
import { createBroker, type Broker, type BrokerOptions, type SecurityEvent } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'
import { testLogger } from '../support/stack.js'
import { rawConnection, rawPackets, subackCodes } from '../support/mqtt.js'
import { eventually, nextEvent } from '../support/wait.js'

// The known aedes 1.2 pitfalls, each reproduced against the real broker over TCP.
const secrets = new Map([['dev-alpha', 'alpha-secret'], ['dev-bravo', 'bravo-secret'], ['dev-frozen', 'frozen-secret']])

let broker: Broker
let port: number
const events: SecurityEvent[] = []
const clients: MqttClient[] = []

async function start (opts: Partial<BrokerOptions> = {}) {
  events.length = 0
  broker = await createBroker({
    authenticateDevice: (id, secret) => secrets.get(id) === secret,
    logger: testLogger(),
    onSecurityEvent: (e) => events.push(e),
    ...opts,
  })
  port = (await broker.listen({ port: 0 })).port
}

async function device (id: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: id, username: id, password: secrets.get(id), reconnectPeriod: 0, ...extra })
  clients.push(client)
  await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject) })
  return client
}

/** The broker still serves: a command published in-process reaches a freshly connected device. */
async function brokerServes (): Promise<void> {
  const probe = await device('dev-bravo')
  expect(await subackCodes(probe, [topics.commands('dev-bravo')])).toEqual([1])
  const got = new Promise<string>((resolve) => probe.once('message', (_t, p) => resolve(p.toString())))
  broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-bravo'), payload: Buffer.from('{"id":"c1"}'), qos: 0, retain: false, dup: false }, () => {})
  expect(await got).toBe('{"id":"c1"}')
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  await broker?.close()
})

describe('aedes pitfalls, closed', () => {
  it('cuts off a PUBLISH declaring 256 MB before 1 MB of it is read', async () => {
    await start()
    const raw = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret' }))
    expect(await raw.connack).toBe(0)
    const cut = nextEvent<[Client, Error]>(broker.aedes, 'clientError', (_c, err) => /cut off/.test(err.message))
    // The largest length MQTT can declare: 256 MiB less a byte.
    raw.socket.write(rawPackets.publishHeader(256 * 1024 * 1024 - 1))
    // Keep sending body, bounded, until the broker hangs up.
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    let sent = 0
    let hungUp = false
    void raw.closed.then(() => { hungUp = true })
    const [client] = await cut
    while (!hungUp && sent < 8 * 1024 * 1024) {
      sent += chunk.length
      if (!raw.socket.write(chunk)) await Promise.race([new Promise((resolve) => raw.socket.once('drain', resolve)), raw.closed])
    }
    await raw.closed
    const bytesRead = (client as unknown as { conn: { bytesRead: number } }).conn.bytesRead
    expect(bytesRead).toBeLessThan(1024 * 1024)
    expect(broker.stats.oversizedPackets).toBe(1)
    expect(events).toContainEqual(expect.objectContaining({ type: 'packet-too-large', deviceId: 'dev-alpha' }))
    await brokerServes()
  })

  it('refuses a 1 MiB payload and keeps serving the others', async () => {
    await start()
    const healthy = await device('dev-bravo')
    expect(await subackCodes(healthy, [topics.commands('dev-bravo')])).toEqual([1])
    const big = await device('dev-alpha')
    const gone = new Promise<void>((resolve) => big.stream.once('close', () => resolve()))
    big.publish(topics.telemetry('dev-alpha'), Buffer.alloc(1024 * 1024, 0x20), { qos: 1 })
    await gone
    expect(broker.stats.oversizedPackets).toBe(1)
    const got = new Promise<string>((resolve) => healthy.once('message', (_t, p) => resolve(p.toString())))
    broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-bravo'), payload: Buffer.from('still here'), qos: 0, retain: false, dup: false }, () => {})
    expect(await got).toBe('still here')
  })

  it('refuses an empty client id with clean session off (MQTT-3.1.3-8), and with it on', async () => {
    await start()
    const persistent = await rawConnection(port, rawPackets.connect({ clientId: '', username: 'dev-alpha', password: 'alpha-secret', clean: false }))
    expect(await persistent.connack).toBe(2)
    await persistent.closed
    const clean = await rawConnection(port, rawPackets.connect({ clientId: '', username: 'dev-alpha', password: 'alpha-secret', clean: true }))
    expect(await clean.connack).toBe(2)
    expect(broker.stats.connections).toBe(0)
  })

  it('refuses client ids and usernames containing +, # or /, and over-long client ids', async () => {
    await start()
    for (const [clientId, username] of [['dev-alpha/x', 'dev-alpha/x'], ['dev+', 'dev+'], ['#', '#'], ['dev-alpha', 'dev-alpha/#'], ['d'.repeat(30_000), 'd'.repeat(30_000)]]) {
      const raw = await rawConnection(port, rawPackets.connect({ clientId, username, password: 'alpha-secret' }))
      expect(await raw.connack, `${clientId.slice(0, 20)} / ${username.slice(0, 20)}`).toBe(2)
    }
  })

  it('refuses deep topics: 20 levels with SUBACK 0x80, 101 levels by disconnecting, and the broker stays up', async () => {
    await start()
    const levels = (n: number) => Array.from({ length: n }, (_, i) => `l${i}`).join('/')
    const a = await device('dev-alpha')
    expect(await subackCodes(a, [levels(20), `devices/dev-alpha/commands/${levels(20)}`])).toEqual([128, 128])
    const gone = new Promise<void>((resolve) => a.stream.once('close', () => resolve()))
    a.subscribe(levels(101), { qos: 1 }, () => {})
    await gone
    const b = await device('dev-alpha')
    const goneToo = new Promise<void>((resolve) => b.stream.once('close', () => resolve()))
    b.publish(levels(101), 'x', { qos: 1 })
    await goneToo
    await brokerServes()
  })

  it('does not let a frozen subscriber stall a healthy one past the drain timeout', async () => {
    const drainTimeoutMs = 1500
    await start({ drainTimeoutMs })
    const healthy = await device('dev-bravo')
    expect(await subackCodes(healthy, [topics.commands('dev-bravo')])).toEqual([1])
    const frozen = await rawConnection(port, rawPackets.connect({ clientId: 'dev-frozen', username: 'dev-frozen', password: 'frozen-secret' }))
    expect(await frozen.connack).toBe(0)
    frozen.socket.write(rawPackets.subscribe(1, topics.commands('dev-frozen')))
    expect(await frozen.nextSuback()).toEqual([0])
    // From here it reads nothing: its socket buffers fill and every delivery to it waits for a drain that never comes.
    frozen.socket.pause()
    const disconnected = nextEvent<[Client]>(broker.aedes, 'clientDisconnect', (c) => c.id === 'dev-frozen', 20_000)
    const command = Buffer.alloc(128 * 1024, 0x61)
    // More deliveries than aedes' 100 concurrent slots, and more bytes than loopback buffers hold.
    for (let i = 0; i < 400; i++) {
      broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-frozen'), payload: command, qos: 0, retain: false, dup: false }, () => {})
    }
    const started = Date.now()
    const got = new Promise<number>((resolve) => healthy.once('message', () => resolve(Date.now() - started)))
    broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-bravo'), payload: Buffer.from('{"id":"c2"}'), qos: 0, retain: false, dup: false }, () => {})
    const latency = await got
    await disconnected
    // Generous margin: the point is seconds, not aedes' default minute.
    expect(latency).toBeLessThan(drainTimeoutMs + 8000)
  })

  it('cuts off a QoS 2 publisher that withholds PUBREL beyond the inbound window', async () => {
    await start({ maxInflightInbound: 16 })
    const raw = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret' }))
    expect(await raw.connack).toBe(0)
    for (let id = 1; id <= 40; id++) raw.socket.write(rawPackets.publish(topics.telemetry('dev-alpha'), '{"readings":{}}', { qos: 2, messageId: id }))
    await raw.closed
    await brokerServes()
  })

  it('keeps publishing to $SYS forbidden and disconnects the device, audited', async () => {
    await start()
    const a = await device('dev-alpha')
    const gone = new Promise<void>((resolve) => a.stream.once('close', () => resolve()))
    a.publish('$SYS/broker/uptime', 'forever', { qos: 1 })
    await gone
    expect(broker.stats.publishDenied).toBe(1)
    expect(events).toContainEqual(expect.objectContaining({ type: 'acl-violation', deviceId: 'dev-alpha', detail: expect.stringContaining('$SYS/broker/uptime') }))
  })

  it('accepts a retained message on presence only', async () => {
    await start()
    const a = await device('dev-alpha')
    await a.publishAsync(topics.presence('dev-alpha'), 'online', { qos: 1, retain: true })
    const gone = new Promise<void>((resolve) => a.stream.once('close', () => resolve()))
    a.publish(topics.telemetry('dev-alpha'), '{"readings":{}}', { qos: 1, retain: true })
    await gone
    expect(events).toContainEqual(expect.objectContaining({ type: 'acl-violation', detail: expect.stringContaining('retain-not-allowed') }))
  })

  it('bounds the queue of a device that is away with a persistent session', async () => {
    await start({ maxQueuedPerClient: 10 })
    const away = await device('dev-alpha', { clean: false })
    expect(await subackCodes(away, [topics.commands('dev-alpha')])).toEqual([1])
    await away.endAsync()
    await new Promise<void>((resolve) => {
      let left = 50
      for (let i = 0; i < 50; i++) {
        broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-alpha'), payload: Buffer.from(`{"id":"c${i}"}`), qos: 1, retain: false, dup: false }, () => { if (--left === 0) resolve() })
      }
    })
    expect(broker.stats.queueDropped).toBe(40)
    const received: string[] = []
    const back = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret', clean: false, reconnectPeriod: 0 })
    clients.push(back)
    back.on('message', (_t, p) => received.push(p.toString()))
    await eventually(() => received.length, (n) => n === 10, { what: 'the 10 queued commands' })
    expect(received[0]).toBe('{"id":"c0"}')
    // Acknowledged messages leave the queue: there is room again.
    broker.aedes.publish({ cmd: 'publish', topic: topics.commands('dev-alpha'), payload: Buffer.from('{"id":"after"}'), qos: 1, retain: false, dup: false }, () => {})
    await eventually(() => received, (r) => r.includes('{"id":"after"}'), { what: 'a command after the queue drained' })
    expect(broker.stats.queueDropped).toBe(40)
  })

  it('drops a client that never sends CONNECT after the connect timeout', async () => {
    await start({ connectTimeoutMs: 300 })
    const raw = await rawConnection(port)
    const started = Date.now()
    await raw.closed
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('bounds the keepalive: a client asking for none is dropped once it falls silent', async () => {
    await start({ maxKeepaliveSeconds: 1 })
    const raw = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret', keepalive: 0 }))
    expect(await raw.connack).toBe(0)
    const started = Date.now()
    await raw.closed
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('caps concurrent connections', async () => {
    await start({ maxConnections: 2 })
    await device('dev-alpha')
    await device('dev-bravo')
    const third = await rawConnection(port, rawPackets.connect({ clientId: 'dev-frozen', username: 'dev-frozen', password: 'frozen-secret' }))
    expect(await third.connack).not.toBe(0)
    await third.closed
  })

  it('throttles authentication failures: quietly per client id, letting the right secret in; unchecked per address', async () => {
    await start({ authFailuresPerClientId: { perSecond: 0.001, burst: 3 }, authFailuresPerAddress: { perSecond: 0.001, burst: 6 } })
    for (let i = 0; i < 3; i++) {
      const bad = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'guess' }))
      expect(await bad.connack).toBe(4)
    }
    // Someone who knows the id cannot keep the device out: its own secret still gets in...
    const owner = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret' }))
    expect(await owner.connack).toBe(0)
    owner.socket.destroy()
    // ...while more guesses for the id are refused without an audit row each.
    const quiet = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'guess' }))
    expect(await quiet.connack).toBe(3)
    // A few more failures on other ids exhaust the address, which is then refused unchecked.
    for (let i = 0; i < 2; i++) {
      const bad = await rawConnection(port, rawPackets.connect({ clientId: `dev-guess-${i}`, username: `dev-guess-${i}`, password: 'guess' }))
      expect(await bad.connack).toBe(4)
    }
    const fromAddress = await rawConnection(port, rawPackets.connect({ clientId: 'dev-bravo', username: 'dev-bravo', password: 'bravo-secret' }))
    expect(await fromAddress.connack).toBe(3)
    expect(broker.stats.authFailures).toBe(5)
    expect(broker.stats.authThrottled).toBe(2)
    expect(events.filter((e) => e.type === 'auth-failed')).toHaveLength(5)
  })

  it('checks a client id over its limit from memory only: no lookup for an id it does not hold, the right secret in for one it does', async () => {
    let lookups = 0
    const inMemory = new Set(['dev-alpha'])
    await start({
      authenticateDevice: (id, secret) => { lookups++; return secrets.get(id) === secret },
      authenticateDeviceFromMemory: (id, secret) => inMemory.has(id) ? secrets.get(id) === secret : undefined,
      authFailuresPerClientId: { perSecond: 0.001, burst: 2 },
    })
    for (const id of ['dev-ghost', 'dev-ghost', 'dev-alpha', 'dev-alpha']) {
      const bad = await rawConnection(port, rawPackets.connect({ clientId: id, username: id, password: 'guess' }))
      expect(await bad.connack).toBe(4)
    }
    expect(lookups).toBe(4)
    // Both ids are over their limit: a flood on the one not in memory costs no lookup...
    for (let i = 0; i < 5; i++) {
      const ghost = await rawConnection(port, rawPackets.connect({ clientId: 'dev-ghost', username: 'dev-ghost', password: 'guess' }))
      expect(await ghost.connack).toBe(3)
    }
    expect(lookups).toBe(4)
    // ...and the device in memory still gets in with its own secret, without one either.
    const owner = await rawConnection(port, rawPackets.connect({ clientId: 'dev-alpha', username: 'dev-alpha', password: 'alpha-secret' }))
    expect(await owner.connack).toBe(0)
    owner.socket.destroy()
    expect(lookups).toBe(4)
    expect(broker.stats.authThrottled).toBe(5)
    expect(events.filter((e) => e.type === 'auth-failed')).toHaveLength(4)
  })

})
