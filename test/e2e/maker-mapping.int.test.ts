import { describe, expect, it } from 'vitest'
import { connectDevice } from '@trellis/device-sdk'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

const env = useStack()

// A greenhouse sensor no built-in dialect knows: written here, by the "maker".
const greenhouse = {
  name: 'verdant-gh2',
  capabilities: ['temperature', 'humidity', 'illuminance', 'battery', 'waterLeak'],
  mapping: {
    format: 'json',
    timestamp: { path: 'meta.epoch', unit: 's' },
    readings: [
      { path: 'env.air.k', capability: 'temperature', unit: 'K' },
      { path: 'env.air.rh', capability: 'humidity', unit: 'ratio' },
      { path: 'env.light[0]', capability: 'illuminance', unit: 'klx' },
      { path: 'pwr.batt_pct', capability: 'battery' },
      { path: 'floor', capability: 'waterLeak', map: { WET: true, DRY: false } },
    ],
  },
}

const epoch = Math.floor(Date.now() / 1000) - 60
const payload = { meta: { epoch }, env: { air: { k: 295.65, rh: 0.615 }, light: [12.5, 3] }, pwr: { batt_pct: 88 }, floor: 'DRY' }
const canonical = { temperature: 22.5, humidity: 61.5, illuminance: 12_500, battery: 88, waterLeak: false }

describe('a maker brings a model of its own', () => {
  it('is told precisely, with 422, what is wrong with a mapping', async () => {
    const maker = await env.api.post('/v1/makers', { name: 'Verdant' })
    const bad = await env.api.post('/v1/models', {
      ...greenhouse,
      mapping: { ...greenhouse.mapping, readings: [...greenhouse.mapping.readings.slice(0, 2), { path: 'x', capability: 'temperature', unit: 'degF' }] },
    }, maker.body.token)
    expect(bad.status).toBe(422)
    expect(bad.body.error.code).toBe('INVALID_MAPPING')
    expect(bad.body.error.message).toContain('readings[2].unit: unknown unit "degF"; use one of °F, K, d°C, d°F, °C')
    expect(bad.body.error.message).toContain('readings[2].capability: temperature is already mapped by readings[0]')
    const models = await env.api.get('/v1/models', maker.body.token)
    expect(models.body.models).toEqual([])
  })

  it('declares it, dry-runs it without storing anything, and its device reports into canonical state', async () => {
    const fleet = await seedFleet(env.api, { model: greenhouse, makerName: 'Verdant' })
    const dry = await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, {
      payloads: [payload, { env: { air: { k: 'warm' } }, floor: 'MUDDY', pwr: { batt_pct: 50 } }, 'not json', { meta: { epoch: 5 }, floor: 'DRY' }],
    }, fleet.makerToken)
    expect(dry.status).toBe(200)
    expect(dry.body).toEqual({
      model: fleet.modelId,
      mapping: 'stored',
      results: [
        { ok: true, ts: new Date(epoch * 1000).toISOString(), readings: canonical, problems: [] },
        {
          ok: true,
          ts: expect.any(String),
          readings: { battery: 50 },
          problems: [
            'readings[0] (env.air.k → temperature): expected a number, got "warm"',
            'readings[4] (floor → waterLeak): "MUDDY" is not in the map; expected one of DRY, WET',
          ],
        },
        { ok: false, reason: expect.stringMatching(/^payload is not JSON/) },
        { ok: false, reason: 'timestamp 1970-01-01T00:00:05.000Z is before 2000; send epoch milliseconds or ISO-8601' },
      ],
      commands: [],
      acks: [],
    })
    // A dry run stores nothing and rejects nothing.
    expect(await influxQuery(env.influx.url, 'SELECT count("value") FROM "battery"')).toEqual([])
    expect((await env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)).body.rejections).toEqual([])

    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rawCommands: true })
    env.devices.push(device)
    await device.publishRaw(JSON.stringify(payload))
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => Object.keys(r.body.state ?? {}).length === 5)
    const ts = new Date(epoch * 1000).toISOString()
    expect(view.body.state).toEqual(Object.fromEntries(Object.entries(canonical).map(([c, value]) => [c, { value, ts }])))
    const rows = await eventually(() => influxQuery(env.influx.url, `SELECT "value" FROM "illuminance" WHERE "device" = '${d.id}'`), (r) => r.length === 1)
    expect(rows).toEqual([{ time: epoch * 1000, value: 12_500 }])
  })

  it('dead-letters what cannot be mapped with the reason, keeps the good readings, and goes on serving', async () => {
    const fleet = await seedFleet(env.api, { model: greenhouse, makerName: 'Verdant' })
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rawCommands: true })
    env.devices.push(device)
    await device.publishRaw('{"env": ')
    await device.publishRaw(JSON.stringify({ env: { air: { k: 900 } }, pwr: { batt_pct: 77 } }))
    await device.publishRaw(JSON.stringify({ nothing: 'mapped' }))
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.battery !== undefined)
    expect(Object.keys(view.body.state)).toEqual(['battery'])
    const rejections = await eventually(() => env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken), (r) => r.body.rejections?.length === 3)
    expect(rejections.body.rejections.map((r: { reason: string }) => r.reason)).toEqual([
      'none of the mapped values is in the payload (looked for env.air.k, env.air.rh, env.light[0], pwr.batt_pct, floor)',
      'readings[0] (env.air.k → temperature): temperature 626.85 is out of range -50..150 for model verdant-gh2',
      expect.stringMatching(/^payload is not JSON/),
    ])
    // The device is claimed: its maker sees the payload's shape, not its values (docs/makers.md, Consent).
    expect(rejections.body.rejections[0]).toMatchObject({ deviceId: d.id, topic: `devices/${d.id}/telemetry`, payload: '{"nothing":"<string>"}' })
    const metrics = await env.api.get('/metrics')
    expect(metrics.body).toMatch(/trellis_ingest_rejected_total\{reason="malformed"\} [2-9]/)
    expect(metrics.body).toMatch(/trellis_dead_letters_total [3-9]/)
    expect(device.connected).toBe(true)
  })

  it('replaces the mapping live: the connected device is read the new way within a second, without reconnecting', async () => {
    const fleet = await seedFleet(env.api, { model: greenhouse, makerName: 'Verdant' })
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rawCommands: true })
    env.devices.push(device)
    let reconnects = 0
    device.on('reconnect', () => { reconnects++ })
    await device.publishRaw(JSON.stringify(payload))
    await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.temperature?.value === 22.5)

    // Firmware 2 sends key=value text in °C; the maker tries the new mapping, then puts it in place.
    const v2 = { format: 'keyvalue', keyValue: { separator: ',', assign: ':' }, readings: [{ path: 'tc', capability: 'temperature' }, { path: 'bat', capability: 'battery' }] }
    const invalid = await env.api.put(`/v1/models/${fleet.modelId}/mapping`, { ...v2, readings: [{ path: 'tc', capability: 'co2' }] }, fleet.makerToken)
    expect(invalid.status).toBe(422)
    expect(invalid.body.error.message).toContain('readings[0].capability: the model has no capability co2')
    const tried = await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, { mapping: v2, payloads: ['tc:19.25,bat:87'] }, fleet.makerToken)
    expect(tried.body).toMatchObject({ mapping: 'candidate', results: [{ ok: true, readings: { temperature: 19.25, battery: 87 }, problems: [] }] })
    const put = await env.api.put(`/v1/models/${fleet.modelId}/mapping`, v2, fleet.makerToken)
    expect(put.status).toBe(200)
    expect(put.body.mapping).toEqual(v2)
    expect((await env.api.get(`/v1/models/${fleet.modelId}`, fleet.makerToken)).body.mapping).toEqual(v2)

    const changedAt = Date.now()
    await device.publishRaw('tc:19.25,bat:87')
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.temperature?.value === 19.25, { timeoutMs: 1000 })
    expect(Date.now() - changedAt).toBeLessThan(1000)
    expect(view.body.state.battery.value).toBe(87)
    expect(device.connected).toBe(true)
    expect(reconnects).toBe(0)

    // Another maker can neither see nor change it.
    const other = await env.api.post('/v1/makers', { name: 'Someone Else' })
    expect((await env.api.put(`/v1/models/${fleet.modelId}/mapping`, v2, other.body.token)).status).toBe(404)
    expect((await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, { payloads: ['tc:1'] }, other.body.token)).status).toBe(404)
  })

  it('documents the mapping routes and the mapping schema in the OpenAPI document', async () => {
    const doc = await env.api.get('/docs')
    expect(doc.status).toBe(200)
    const put = doc.body.paths['/v1/models/{id}/mapping'].put
    expect(put['x-access']).toBe('maker')
    expect(put.requestBody.content['application/json'].schema.properties.format.enum).toEqual(['json', 'properties', 'keyvalue', 'binary'])
    expect(Object.keys(doc.body.paths['/v1/models/{id}/mapping:test'].post.requestBody.content['application/json'].schema.properties)).toEqual(['payloads', 'commands', 'acks', 'mapping'])
    expect(doc.body.paths['/v1/models'].post.requestBody.content['application/json'].schema.properties.mapping.properties.readings.type).toBe('array')
  })
})
