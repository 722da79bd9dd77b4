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
