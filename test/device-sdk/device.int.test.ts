import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { nextEvent } from '../support/wait.js'

// The SDK against a real broker over TCP, without a hub: what an appliance's process sees.
let broker: Aedes
let server: net.Server
let url: string
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => { unhandled.push(reason) }

beforeAll(async () => {
  broker = await Aedes.createBroker()
  server = net.createServer(broker.handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
  process.on('unhandledRejection', onUnhandled)
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await new Promise<void>((resolve) => broker.close(() => resolve()))
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

async function sendCommand (deviceId: string, payload: string): Promise<void> {
  const hub = await mqtt.connectAsync(url, { clientId: `hub-${deviceId}` })
  await hub.publishAsync(topics.commands(deviceId), payload, { qos: 1 })
  await hub.endAsync()
}

describe('device SDK failures nobody awaits', () => {
  it('drops a bad command quietly when the appliance has no error listener, and goes on obeying', async () => {
    const device: Device = await connectDevice({ url, deviceId: 'quiet-1', secret: 'x', handlers: { power: () => {} } })
    try {
      const obeyed = nextEvent(device, 'command')
      await sendCommand('quiet-1', 'not json at all')
      await sendCommand('quiet-1', JSON.stringify({ id: 'c-1', set: { power: true } }))
      const [command] = await obeyed
      expect(command).toMatchObject({ id: 'c-1' })
      expect(unhandled).toEqual([])
    } finally {
      await device.close()
    }
  })

  it('reports the bad command to an error listener', async () => {
    const device = await connectDevice({ url, deviceId: 'heard-1', secret: 'x' })
    try {
      const error = nextEvent(device, 'error')
      await sendCommand('heard-1', '{"id": 3')
      const [err] = await error
      expect(String(err)).toMatch(/ignored a command that is not JSON/)
    } finally {
      await device.close()
    }
  })

  it('does not report the presence publish that close() cut short', async () => {
    const errors: unknown[] = []
    const device = await connectDevice({ url, deviceId: 'closing-1', secret: 'x' })
    device.on('error', (err) => errors.push(err))
    // After a dropped connection the device reconnects and announces `online` on CONNACK;
    // an appliance that shuts down at that moment cuts the announcement short.
    device.client.prependOnceListener('connect', () => { void device.client.endAsync() })
    const ended = nextEvent(device.client, 'end')
    ;(broker as unknown as { clients: Record<string, { close (): void }> }).clients['closing-1'].close()
    await ended
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors).toEqual([])
    expect(unhandled).toEqual([])
  })
})

describe('device SDK refusals', () => {
  async function ackOf (deviceId: string, command: object): Promise<{ id: string, status: string, error?: string }> {
    const hub = await mqtt.connectAsync(url, { clientId: `hub-acks-${deviceId}` })
    try {
      await hub.subscribeAsync(topics.acks(deviceId), { qos: 1 })
      const ack = nextEvent(hub, 'message')
      await hub.publishAsync(topics.commands(deviceId), JSON.stringify(command), { qos: 1 })
      const [, payload] = await ack
      return JSON.parse(String(payload))
    } finally {
      await hub.endAsync()
    }
  }

  it('names the model, not the device id, when a command is out of the model\'s range', async () => {
    const device = await connectDevice({ url, deviceId: 'fridge-7', model: 'frostline-f2', secret: 'x', capabilities: [{ name: 'targetTemperature', min: 1, max: 8 }], handlers: { targetTemperature: () => {} } })
    try {
      const ack = await ackOf('fridge-7', { id: 'c-9', set: { targetTemperature: 40 } })
      expect(ack).toEqual({ id: 'c-9', status: 'error', error: 'targetTemperature 40 is out of range 1..8 for model frostline-f2' })
    } finally {
      await device.close()
    }
  })

  it('says "this device" when it was not told its model, never the device id', async () => {
    const device = await connectDevice({ url, deviceId: 'fridge-8', secret: 'x', capabilities: [{ name: 'targetTemperature', min: 1, max: 8 }], handlers: { targetTemperature: () => {} } })
    try {
      const ack = await ackOf('fridge-8', { id: 'c-10', set: { targetTemperature: 40 } })
      expect(ack.error).toBe('targetTemperature 40 is out of range 1..8 for this device')
    } finally {
      await device.close()
    }
  })
})

describe('device SDK close()', () => {
  // A broker of its own that takes a device's telemetry and never acknowledges it:
  // a hub that hangs, or one that died with the device's publish in flight.
  async function startSilentBroker (): Promise<{ url: string, dropConnections (): Promise<void>, close (): Promise<void> }> {
    const silent = await Aedes.createBroker({ authorizePublish: (_client, packet, callback) => { if (!packet.topic.endsWith('/telemetry')) callback(null) } })
    const sockets = new Set<net.Socket>()
    const listener = net.createServer((socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)); silent.handle(socket) })
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    const stopListening = new Promise<void>((resolve) => { listener.once('close', resolve) })
    return {
      url: `mqtt://127.0.0.1:${(listener.address() as AddressInfo).port}`,
      async dropConnections () {
        listener.close()
        for (const s of sockets) s.destroy()
      },
      async close () {
        for (const s of sockets) s.destroy()
        if (listener.listening) listener.close()
        await stopListening
        await new Promise<void>((resolve) => silent.close(() => resolve()))
      },
    }
  }

  it('ends within its deadline when the broker never acknowledges a report, and rejects that report with a reason', async () => {
    const silent = await startSilentBroker()
    try {
      const device = await connectDevice({ url: silent.url, deviceId: 'hung-1', secret: 'x' })
      const report = device.report({ temperature: 20 })
      const settled = report.then(() => 'acknowledged', (err: Error) => err.message)
      const started = Date.now()
      await device.close({ timeoutMs: 500 })
      expect(Date.now() - started).toBeLessThan(2_000)
      expect(await settled).toBe('device hung-1 closed before the broker acknowledged this message')
      expect(device.connected).toBe(false)
    } finally {
      await silent.close()
    }
  })

  it('ends within its deadline when the connection is gone with a report in flight', async () => {
    const silent = await startSilentBroker()
    try {
      const device = await connectDevice({ url: silent.url, deviceId: 'cut-1', secret: 'x', reconnectDelayMs: 50 })
      const report = device.report({ temperature: 20 })
      const settled = report.then(() => 'acknowledged', (err: Error) => err.message)
      const gone = nextEvent(device, 'disconnect')
      await silent.dropConnections()
      await gone
      const started = Date.now()
      await device.close({ timeoutMs: 500 })
      expect(Date.now() - started).toBeLessThan(2_000)
      expect(await settled).toBe('device cut-1 closed before the broker acknowledged this message')
      await expect(device.report({ temperature: 21 })).rejects.toThrow('device cut-1 is closed')
    } finally {
      await silent.close()
    }
  })

  it('waits for reports in flight to be acknowledged, then publishes offline', async () => {
    const watcher = await mqtt.connectAsync(url, { clientId: 'watch-flush-1' })
    try {
      await watcher.subscribeAsync('devices/flush-1/#', { qos: 1 })
      const seen: string[] = []
      watcher.on('message', (topic, payload) => seen.push(`${topic.split('/')[2]} ${String(payload)}`))
      const device = await connectDevice({ url, deviceId: 'flush-1', secret: 'x' })
      const offline = nextEvent<[string, Buffer]>(watcher, 'message', (topic, payload) => topic === topics.presence('flush-1') && String(payload) === 'offline')
      const reports = [1, 2, 3].map((i) => device.report({ temperature: i }, i))
      await device.close()
      await Promise.all(reports)
      await offline
      expect(seen.map((m) => m.split(' ')[0])).toEqual(['presence', 'telemetry', 'telemetry', 'telemetry', 'presence'])
      expect(seen.at(-1)).toBe('presence offline')
    } finally {
      await watcher.endAsync()
    }
  })
})
