import { describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { topics } from '@trellis/device-sdk'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

const env = useStack()

/** A radio sensor's frame: epoch seconds (u32 big), temperature in hundredths (i16 little), humidity in halves (u8), battery % (u8). */
function frame (epoch: number, centidegrees: number, halfPercent: number, battery: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt32BE(epoch, 0)
  b.writeInt16LE(centidegrees, 4)
  b.writeUInt8(halfPercent, 6)
  b.writeUInt8(battery, 7)
  return b
}

const model = (name: string, encoding: 'raw' | 'hex' | 'base64') => ({
  name,
  capabilities: ['temperature', 'humidity', 'battery'],
  mapping: {
    format: 'binary',
    binary: { encoding },
    timestamp: { bytes: { offset: 0, type: 'u32' }, unit: 's' },
    readings: [
      { bytes: { offset: 4, type: 'i16', endian: 'little' }, capability: 'temperature', scale: 0.01 },
      { bytes: { offset: 6, type: 'u8' }, capability: 'humidity', scale: 0.5 },
      { bytes: { offset: 7, type: 'u8' }, capability: 'battery' },
    ],
  },
})

async function connect (d: { id: string, secret: string }): Promise<MqttClient> {
  const client = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
  env.clients.push(client)
  return client
}

describe('binary payloads', () => {
  it('reads signed little-endian and unsigned fields at byte offsets, scaled, from hex text and from raw bytes', async () => {
    const epoch = Math.floor(Date.now() / 1000) - 30
    for (const [name, encoding, encode] of [['radio-hex-1', 'hex', (b: Buffer) => b.toString('hex').toUpperCase()], ['radio-raw-1', 'raw', (b: Buffer) => b]] as const) {
      const fleet = await seedFleet(env.api, { model: model(name, encoding) })
      const [d] = fleet.devices
      const client = await connect(d)
      // -5.12 °C: a negative reading proves the sign; 0xFE00 little-endian is 0x00 0xFE on the wire.
      await client.publishAsync(topics.telemetry(d.id), encode(frame(epoch, -512, 123, 97)), { qos: 1 })
      const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.battery !== undefined)
      const ts = new Date(epoch * 1000).toISOString()
      expect(view.body.state).toEqual({ temperature: { value: -5.12, ts }, humidity: { value: 61.5, ts }, battery: { value: 97, ts } })
      const rows = await eventually(() => influxQuery(env.influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${d.id}'`), (r) => r.length === 1)
      expect(rows).toEqual([{ time: epoch * 1000, value: -5.12 }])
    }
  })

  it('dead-letters a frame too short for its fields, or text that is not hex, with the reason', async () => {
    const fleet = await seedFleet(env.api, { model: model('radio-hex-2', 'hex') })
    const [d] = fleet.devices
    const client = await connect(d)
    await client.publishAsync(topics.telemetry(d.id), 'ZZ00', { qos: 1 })
    await client.publishAsync(topics.telemetry(d.id), frame(Math.floor(Date.now() / 1000), 100, 100, 50).subarray(0, 4).toString('hex'), { qos: 1 })
    const rejections = await eventually(() => env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken), (r) => r.body.rejections?.length === 2)
    expect(rejections.body.rejections.map((r: { reason: string }) => r.reason)).toEqual([
      'none of the mapped values is in the payload (looked for bytes 4..5 (i16 little), bytes 6 (u8), bytes 7 (u8))',
      'payload is not hex text',
    ])
  })

  it('dry-runs a binary mapping and refuses a rule without its byte field, naming the rule', async () => {
    const fleet = await seedFleet(env.api, { model: model('radio-hex-3', 'hex') })
    const epoch = Math.floor(Date.now() / 1000) - 30
    const dry = await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, { payloads: [frame(epoch, 2150, 80, 12).toString('hex')] }, fleet.makerToken)
    expect(dry.body.results).toEqual([{ ok: true, ts: new Date(epoch * 1000).toISOString(), readings: { temperature: 21.5, humidity: 40, battery: 12 }, problems: [] }])
    const bad = await env.api.put(`/v1/models/${fleet.modelId}/mapping`, { format: 'binary', readings: [{ path: 't', capability: 'temperature' }] }, fleet.makerToken)
    expect(bad.status).toBe(422)
    expect(bad.body.error.message).toBe('the mapping is not valid for this model: readings[0]: a "binary" mapping finds values by "bytes", e.g. {"offset": 2, "type": "i16"}; readings[0].bytes: required with format "binary", e.g. {"offset": 2, "type": "i16", "endian": "little"}')
  })
})
