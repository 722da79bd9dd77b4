import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Issue #17, findings 3 to 5 (maker part): what a hostile maker or its devices can make the hub keep.
let influx: TestInflux
let stack: TestStack
let api: ApiClient
const devices: Device[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

describe('rejections a maker reads', () => {
  it('name the first unknown keys and count the rest, next to the other problems', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret })
    devices.push(device)
    const readings: Record<string, number> = { temperature: 412 }
    for (let i = 0; i < 1700; i++) readings[`x${i}`] = 1
    await device.publishRaw(JSON.stringify({ readings }))

    const res = await eventually(() => api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken), (r) => r.body.rejections?.length === 1, { what: 'the rejection' })
    const [rejection] = res.body.rejections
    expect(rejection.reason).toBe('temperature 412 is out of range -50..150 for model thermo-1; model thermo-1 has no capability x0, x1, x2, x3, x4 … and 1695 more')
    expect(rejection.payload.length).toBeLessThanOrEqual(512)
    expect(rejection.bytes).toBeGreaterThan(12_000)
  })
})
