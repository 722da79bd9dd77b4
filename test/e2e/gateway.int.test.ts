import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

/**
 * A radio gateway (issue 13, item 2): it publishes its children's readings on
 * its own topic, naming each child in a field; each child's payload is read by
 * the child's own model (binary sensors here). A raw mqtt.js client plays the
 * gateway byte for byte; the children never connect.
 */

const env = useStack()

const gatewayModel = {
  name: 'radio-gw-1',
  capabilities: ['rssi'],
  mapping: {
    format: 'json',
    topics: { telemetry: [{ topic: 'gw/{device}/rx' }] },
    gateway: { list: 'rx', child: 'node', payload: 'frame' },
    readings: [{ path: 'rssi', capability: 'rssi' }],
  },
}

/** The child sensors' frames: temperature in hundredths (i16 big), battery % (u8), as hex text. */
const sensorModel = {
  name: 'radio-th-1',
  capabilities: ['temperature', 'battery'],
  mapping: {
    format: 'binary',
    binary: { encoding: 'hex' },
    readings: [
      { bytes: { offset: 0, type: 'i16' }, capability: 'temperature', scale: 0.01 },
      { bytes: { offset: 2, type: 'u8' }, capability: 'battery' },
    ],
  },
}

describe('radio gateway', () => {
  it('stores the readings of two binary children its gateway reports, and refuses a device not provisioned under it with a reason', async () => {
    const fleet = await seedFleet(env.api, { model: gatewayModel })
    const [gateway] = fleet.devices
    const sensors = await env.api.post('/v1/models', sensorModel, fleet.makerToken)
    expect(sensors.status).toBe(201)
    const children = await env.api.post('/v1/devices', { model: sensors.body.id, count: 2, gateway: gateway.id }, fleet.makerToken)
    expect(children.status).toBe(201)
    // A sensor of the same maker, provisioned under no gateway: the gateway may not speak for it.
    const stray = await env.api.post('/v1/devices', { model: sensors.body.id }, fleet.makerToken)
    const [a, b] = children.body.devices as Array<{ id: string, claimCode: string }>
    const c = stray.body.devices[0] as { id: string, claimCode: string }
    for (const d of [a, b, c]) expect((await env.api.post('/v1/devices/claim', { claimCode: d.claimCode }, fleet.ownerToken)).status).toBe(200)

    const firmware = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: gateway.id, username: gateway.id, password: gateway.secret, reconnectPeriod: 0 })
    env.clients.push(firmware)
    // 21.50 °C is 0x0866, -3.25 °C is 0xFEBB (two's complement).
    const payload = `{"rssi":-61,"rx":[{"node":"${a.id}","frame":"086657"},{"node":"${c.id}","frame":"00C864"},{"node":"${b.id}","frame":"FEBB0C"}]}`
    await firmware.publishAsync(`gw/${gateway.id}/rx`, payload, { qos: 1 })

    const viewA = await eventually(() => env.api.get(`/v1/devices/${a.id}`, fleet.ownerToken), (r) => r.body.state?.battery !== undefined)
    expect(viewA.body.state).toMatchObject({ temperature: { value: 21.5 }, battery: { value: 87 } })
    const viewB = await eventually(() => env.api.get(`/v1/devices/${b.id}`, fleet.ownerToken), (r) => r.body.state?.battery !== undefined)
    expect(viewB.body.state).toMatchObject({ temperature: { value: -3.25 }, battery: { value: 12 } })
    const ownGw = await eventually(() => env.api.get(`/v1/devices/${gateway.id}`, fleet.ownerToken), (r) => r.body.state?.rssi !== undefined)
    expect(ownGw.body.state.rssi.value).toBe(-61)

    const rejections = await eventually(() => env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken), (r) => r.body.rejections?.length === 1)
    expect(rejections.body.rejections[0]).toMatchObject({
      deviceId: gateway.id,
      reason: `rx[1]: device ${c.id} is not provisioned under gateway ${gateway.id}; provision it with POST /v1/devices and "gateway": "${gateway.id}"`,
    })
    expect((await env.api.get(`/v1/devices/${c.id}`, fleet.ownerToken)).body.state).toEqual({})
    const rows = await eventually(() => influxQuery(env.influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${b.id}'`), (r) => r.length === 1)
    expect(rows[0].value).toBe(-3.25)
  })

  it('refuses a child under a device of another maker, or under a model that is no gateway', async () => {
    const fleet = await seedFleet(env.api, { model: sensorModel, makerName: 'Other Radio Co' })
    const other = await seedFleet(env.api, { model: { ...gatewayModel, name: 'radio-gw-2' }, makerName: 'Third Radio Co' })
    const elsewhere = await env.api.post('/v1/devices', { model: fleet.modelId, gateway: other.devices[0].id }, fleet.makerToken)
    expect(elsewhere.status).toBe(422)
    expect(elsewhere.body.error.message).toBe(`no gateway ${other.devices[0].id} of yours; a child is provisioned under a device of yours whose model's mapping has a "gateway" section`)
    const notGateway = await env.api.post('/v1/devices', { model: fleet.modelId, gateway: fleet.devices[0].id }, fleet.makerToken)
    expect(notGateway.status).toBe(422)
    expect(notGateway.body.error.message).toBe(`no gateway ${fleet.devices[0].id} of yours; a child is provisioned under a device of yours whose model's mapping has a "gateway" section`)
  })
})
