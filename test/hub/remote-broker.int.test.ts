import mqtt, { type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createBroker, type Broker } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'
import { RemoteBroker } from '../../hub/src/ingest/remote-broker.js'
import { eventually } from '../support/wait.js'

// The hub's session against a real broker over TCP; ingest is replaced by a hook the test controls.
const service = { username: 'trellis-hub', secret: 'a-service-secret-for-this-test' }
const deviceId = 'sensor-0001'

let broker: Broker
let url: string
let link: RemoteBroker | undefined
let device: MqttClient | undefined

beforeEach(async () => {
  broker = await createBroker({ service, authenticateDevice: (id, secret) => id === deviceId && secret === 'device-secret' })
  url = `mqtt://127.0.0.1:${(await broker.listen({ port: 0 })).port}`
  device = await mqtt.connectAsync(url, { clientId: deviceId, username: deviceId, password: 'device-secret', protocolVersion: 4, reconnectPeriod: 0 })
})

afterEach(async () => {
  await device?.endAsync(true)
  await link?.close()
  await broker.close()
})

const startLink = async () => {
  link = new RemoteBroker({ url, ...service }, pino({ level: 'silent' }))
  return link
}

describe('the hub\'s session with a broker apart', () => {
  it('does not acknowledge telemetry that was not made durable: it reconnects and the broker sends it again', async () => {
    const session = await startLink()
    const seen: string[] = []
    let failures = 1
    session.onDelivery('telemetry', (_id, packet, done) => {
      seen.push(packet.payload.toString())
      if (failures-- > 0) return done(new Error('the writer could neither write nor spool'))
      done(null)
    })
    await session.start()
    await device!.publishAsync(topics.telemetry(deviceId), '{"temperature":21}', { qos: 1 })

    await eventually(() => session.stats.acknowledged, (n) => n === 1, { what: 'the second delivery acknowledged' })
    expect(seen).toEqual(['{"temperature":21}', '{"temperature":21}'])
    expect(session.stats.notDurable).toBe(1)
    expect(session.stats.reconnects).toBeGreaterThanOrEqual(1)
  })

  it('acknowledges in arrival order, and only what is done', async () => {
    const session = await startLink()
    const pending: Array<(err: Error | null) => void> = []
    session.onDelivery('telemetry', (_id, _packet, done) => { pending.push(done) })
    await session.start()
    for (const n of [1, 2, 3]) await device!.publishAsync(topics.telemetry(deviceId), `{"temperature":${n}}`, { qos: 1 })
    await eventually(() => pending.length, (n) => n === 3, { what: 'three messages at the hook' })

    // The broker keeps messages it was not acknowledged for: the hub's session holds three in flight.
    pending[2](null)
    pending[1](null)
    expect(session.stats.acknowledged).toBe(0)
    pending[0](null)
    expect(session.stats.acknowledged).toBe(3)
  })

  it('passes other channels to the subscribers and refuses to start without the service credentials', async () => {
    const session = await startLink()
    const events: string[] = []
    session.onDelivery('events', (_id, packet, done) => { events.push(packet.topic); done() })
    await session.start()
    await device!.publishAsync(topics.events(deviceId), '{"type":"door-opened"}', { qos: 1 })
    await eventually(() => events, (e) => e.length === 1, { what: 'the event delivered' })
    expect(events).toEqual([topics.events(deviceId)])

    const impostor = new RemoteBroker({ url, username: service.username, secret: 'wrong', clientId: 'impostor', connectTimeoutMs: 1_000 }, pino({ level: 'silent' }))
    await expect(impostor.start()).rejects.toThrow(/refused the service credentials/)
    await impostor.close()
  })

  it('counts a device as able to take commands while its presence says online, and publishes them on its topic', async () => {
    const session = await startLink()
    await session.start()
    const ready: string[] = []
    session.on('commands-ready', (id: string) => ready.push(id))
    expect(session.canReceiveCommands(deviceId)).toBe(false)
    await device!.subscribeAsync(topics.commands(deviceId), { qos: 1 })
    await device!.publishAsync(topics.presence(deviceId), 'online', { qos: 1, retain: true })
    await eventually(() => ready, (r) => r.length === 1, { what: 'commands-ready' })
    expect(ready).toEqual([deviceId])
    expect(session.canReceiveCommands(deviceId)).toBe(true)

    const received = new Promise<string>((resolve) => device!.once('message', (_topic, payload) => resolve(payload.toString())))
    await new Promise<void>((resolve, reject) => session.publishCommand(deviceId, Buffer.from('{"id":"c1","set":{"power":true}}'), (err) => err ? reject(err) : resolve()))
    expect(await received).toBe('{"id":"c1","set":{"power":true}}')

    await device!.publishAsync(topics.presence(deviceId), 'offline', { qos: 1, retain: true })
    await eventually(() => session.canReceiveCommands(deviceId), (can) => !can, { what: 'the device no longer counted as reachable' })
  })
})
