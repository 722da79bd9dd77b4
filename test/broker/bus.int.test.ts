import mqtt, { type MqttClient } from 'mqtt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { InProcessBus, createBroker, type Broker } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'
import { eventually } from '../support/wait.js'

// The in-process DeviceBus over the real broker and a real MQTT client.
const deviceId = 'dev-bus-1'
let broker: Broker
let bus: InProcessBus
let url: string
const clients: MqttClient[] = []

beforeEach(async () => {
  broker = await createBroker({ authenticateDevice: (id, secret) => id === deviceId && secret === 'device-secret' })
  bus = new InProcessBus(broker)
  url = `mqtt://127.0.0.1:${(await broker.listen({ port: 0 })).port}`
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => {})))
  bus.close()
  await broker.close()
})

async function connect (): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId: deviceId, username: deviceId, password: 'device-secret', protocolVersion: 4, reconnectPeriod: 0 })
  clients.push(client)
  return client
}

describe('the in-process device bus', () => {
  it('holds a QoS 1 telemetry PUBACK until the handler is done', async () => {
    const pending: Array<(err?: Error | null) => void> = []
    bus.onDelivery('telemetry', (id, packet, done) => {
      expect([id, packet.topic, packet.payload.toString(), packet.qos]).toEqual([deviceId, topics.telemetry(deviceId), '{"readings":{}}', 1])
      pending.push(done)
    })
    const device = await connect()
    let acked = false
    const publish = device.publishAsync(topics.telemetry(deviceId), '{"readings":{}}', { qos: 1 }).then(() => { acked = true })
    await eventually(() => pending.length, (n) => n === 1, { what: 'the message at the handler' })
    // The device's next packets still flow, and its PUBACK has not come.
    await device.publishAsync(topics.events(deviceId), '{"type":"x"}', { qos: 0 })
    expect(acked).toBe(false)
    pending[0](null)
    await publish
    expect(acked).toBe(true)
  })

  it('hands other channels over with the device id, and stops when the handler is removed', async () => {
    const seen: string[] = []
    const handler = (id: string, packet: { payload: Buffer }, done: () => void) => { seen.push(`${id} ${packet.payload.toString()}`); done() }
    bus.onDelivery('events', handler)
    const device = await connect()
    await device.publishAsync(topics.events(deviceId), 'one', { qos: 1 })
    await eventually(() => seen.length, (n) => n === 1, { what: 'the event' })
    bus.onDelivery('events', null)
    await device.publishAsync(topics.events(deviceId), 'two', { qos: 1 })
    // One device's messages arrive in order: had 'two' been handed over, it would come before 'three'.
    bus.onDelivery('events', handler)
    await device.publishAsync(topics.events(deviceId), 'three', { qos: 1 })
    await eventually(() => seen.length, (n) => n >= 2, { what: 'the third event' })
    expect(seen).toEqual([`${deviceId} one`, `${deviceId} three`])
  })

  it('tells of connections and of a device ready for commands, and publishes commands it receives', async () => {
    const events: string[] = []
    for (const event of ['connect', 'disconnect', 'commands-ready'] as const) bus.on(event, (id: string) => events.push(`${event} ${id}`))
    const device = await connect()
    await eventually(() => events, (e) => e.includes(`connect ${deviceId}`), { what: 'connect' })
    expect(bus.canReceiveCommands(deviceId)).toBe(false)
    await device.subscribeAsync(topics.commands(deviceId), { qos: 1 })
    await eventually(() => bus.canReceiveCommands(deviceId), (can) => can, { what: 'ready for commands' })
    expect(events).toEqual([`connect ${deviceId}`, `commands-ready ${deviceId}`])

    const received = new Promise<string>((resolve) => device.once('message', (_t, payload) => resolve(payload.toString())))
    await new Promise<void>((resolve, reject) => bus.publishCommand(deviceId, Buffer.from('{"id":"c1"}'), (err) => err ? reject(err) : resolve()))
    expect(await received).toBe('{"id":"c1"}')
    expect(bus.backlog).toBe(0)

    await device.endAsync()
    await eventually(() => events, (e) => e.includes(`disconnect ${deviceId}`), { what: 'disconnect' })
    expect(bus.canReceiveCommands(deviceId)).toBe(false)
  })
})
