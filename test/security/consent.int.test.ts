import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Usage data (temperature at home, power, motion…) is the owner's: a maker sees the health of
// claimed devices, and more only under a grant the owner gave.

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

const model = { name: 'plug-1', capabilities: ['temperature', 'power', 'powerDraw', 'rssi', 'firmwareVersion'] }

async function reporting (fleet: Awaited<ReturnType<typeof seedFleet>>, index = 0) {
  const d = fleet.devices[index]
  const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret })
  devices.push(device)
  await device.report({ temperature: 21.5, power: true, powerDraw: 40, rssi: -61, firmwareVersion: '2.1.0' }, Date.now() - 1000)
  await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.rssi?.value === -61, { what: 'the reading in the owner view' })
  return d
}

describe('consent: what a maker sees of a claimed device', () => {
  it('shows the maker the health of a claimed device and none of its usage values', async () => {
    const fleet = await seedFleet(api, { makerName: 'Consent A', model })
    const d = await reporting(fleet)
    const seen = await api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    expect(seen.status).toBe(200)
    expect(seen.body.claimed).toBe(true)
    expect(seen.body.state.rssi.value).toBe(-61)
    expect(seen.body.state.firmwareVersion.value).toBe('2.1.0')
    expect(Object.keys(seen.body.state).sort()).toEqual(['firmwareVersion', 'rssi'])
    const listed = await api.get('/v1/devices', fleet.makerToken)
    expect(Object.keys(listed.body.devices.find((x: { id: string }) => x.id === d.id).state).sort()).toEqual(['firmwareVersion', 'rssi'])
  })
})
