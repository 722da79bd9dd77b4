import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { connectDevice, DeviceConnectError, topics } from '@trellis/device-sdk'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { subackCodes } from '../support/mqtt.js'

const env = useStack()

describe('a reading travels from a device to InfluxDB and out of the owner API', () => {
  it('stores what an SDK device reports and serves it as state and history', async () => {
    const fleet = await seedFleet(env.api)
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
    env.devices.push(device)
    const ts = Date.now() - 1000
    await device.report({ temperature: 21.5, humidity: 40, power: true }, ts)

    const rows = await eventually(
      () => influxQuery(env.influx.url, `SELECT "value", "model", "maker" FROM "temperature" WHERE "device" = '${d.id}'`),
      (r) => r.length === 1, { what: 'the temperature point in InfluxDB' })
    expect(rows[0]).toMatchObject({ time: ts, value: 21.5, model: fleet.modelId, maker: fleet.makerId })
    const power = await influxQuery(env.influx.url, `SELECT "value" FROM "power" WHERE "device" = '${d.id}'`)
    expect(power).toEqual([{ time: ts, value: true }])

    const view = await env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken)
    expect(view.status).toBe(200)
    expect(view.body).toMatchObject({
      id: d.id,
      model: fleet.modelId,
      maker: fleet.makerId,
      brand: 'Acme Appliances',
      online: true,
      state: {
        temperature: { value: 21.5, ts: new Date(ts).toISOString() },
        humidity: { value: 40, ts: new Date(ts).toISOString() },
        power: { value: true, ts: new Date(ts).toISOString() },
      },
    })
    expect(Date.parse(view.body.lastSeen)).toBeGreaterThan(ts)

    const from = new Date(ts - 60_000).toISOString()
    const to = new Date(ts + 60_000).toISOString()
    const history = await env.api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${from}&to=${to}`, fleet.ownerToken)
    expect(history.status).toBe(200)
    expect(history.body).toMatchObject({ capability: 'temperature', unit: '°C', points: [{ ts: new Date(ts).toISOString(), value: 21.5 }] })

    const list = await env.api.get('/v1/devices', fleet.ownerToken)
    expect(list.body.devices.map((x: { id: string }) => x.id)).toEqual([d.id])
    const fleetView = await env.api.get('/v1/devices', fleet.makerToken)
    expect(fleetView.body.devices).toMatchObject([{ id: d.id, claimed: true }])
  })

  it('aggregates history per interval', async () => {
    const fleet = await seedFleet(env.api)
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
    env.devices.push(device)
    const base = Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000
    // Two minutes, three readings each: 10, 20, 30 then 40, 50, 60.
    for (let minute = 0; minute < 2; minute++) {
      for (let i = 0; i < 3; i++) await device.report({ temperature: 10 * (minute * 3 + i + 1) }, base + minute * 60_000 + i * 1000)
    }
    const from = new Date(base).toISOString()
    const to = new Date(base + 119_999).toISOString()
    const q = (agg: string) => env.api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${from}&to=${to}&every=1m&agg=${agg}`, fleet.ownerToken)
    await eventually(() => q('last'), (r) => r.body.points?.length === 2, { what: 'two aggregated points' })
    expect((await q('mean')).body.points).toEqual([{ ts: new Date(base).toISOString(), value: 20 }, { ts: new Date(base + 60_000).toISOString(), value: 50 }])
    expect((await q('min')).body.points.map((p: { value: number }) => p.value)).toEqual([10, 40])
    expect((await q('max')).body.points.map((p: { value: number }) => p.value)).toEqual([30, 60])
    expect((await q('last')).body.points.map((p: { value: number }) => p.value)).toEqual([30, 60])
    const bad = await env.api.get(`/v1/devices/${d.id}/telemetry?capability=power&every=1m&agg=mean`, fleet.ownerToken)
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toBe('power is a boolean; only agg=last applies to it')
  })

  it('keeps the valid readings of a message and rejects the rest with a reason', async () => {
    const fleet = await seedFleet(env.api)
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
    env.devices.push(device)
    await device.report({ temperature: 412, humidity: 55, co2: 800, power: 'yes' })
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.humidity !== undefined)
    expect(Object.keys(view.body.state)).toEqual(['humidity'])
    const rejections = await env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)
    expect(rejections.status).toBe(200)
    const reason: string = rejections.body.rejections[0].reason
    expect(reason).toContain('temperature 412 is out of range -50..150 for model thermo-1')
    expect(reason).toContain('model thermo-1 has no capability co2')
    expect(reason).toContain('power must be true or false')
    const metrics = await env.api.get('/metrics')
    expect(metrics.body).toMatch(/trellis_ingest_rejected_total\{reason="invalid-reading"\} [1-9]/)
    expect(metrics.body).toMatch(/process_cpu_user_seconds_total/)
  })
})

describe('the broker and the API keep tenants apart', () => {
  it('refuses a device with the wrong secret', async () => {
    const fleet = await seedFleet(env.api)
    await expect(connectDevice({ url: env.stack.mqttUrl, deviceId: fleet.devices[0].id, secret: 'wrong' })).rejects.toBeInstanceOf(DeviceConnectError)
  })

  it("does not let a device publish to or subscribe on another device's topics", async () => {
    const fleet = await seedFleet(env.api, { count: 2 })
    const [a, b] = fleet.devices
    const deviceB = await connectDevice({ url: env.stack.mqttUrl, deviceId: b.id, secret: b.secret })
    env.devices.push(deviceB)
    const rogue = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: a.id, username: a.id, password: a.secret, reconnectPeriod: 0 })
    try {
      const granted = await subackCodes(rogue, [topics.commands(b.id), topics.telemetry(b.id), 'devices/+/telemetry', '#', '$SYS/#'])
      expect(granted).toEqual([128, 128, 128, 128, 128])
      const received: string[] = []
      rogue.on('message', (topic) => received.push(topic))
      await deviceB.report({ temperature: 20 })

      // A publish to B's telemetry is refused and A is disconnected; nothing is stored for B from it.
      const closed = new Promise<void>((resolve) => rogue.once('close', () => resolve()))
      rogue.publish(topics.telemetry(b.id), JSON.stringify({ readings: { temperature: 99 } }), { qos: 1 })
      await closed
      await deviceB.report({ temperature: 21 })
      const rows = await eventually(() => influxQuery(env.influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${b.id}'`), (r) => r.length === 2)
      expect(rows.map((r) => r.value)).toEqual([20, 21])
      expect(received).toEqual([])
    } finally {
      await rogue.endAsync(true)
    }
  })

  it("answers 404 for another owner's device, and 401 without a valid token", async () => {
    const mine = await seedFleet(env.api)
    const theirs = await seedFleet(env.api, { makerName: 'Other Maker' })
    const id = theirs.devices[0].id
    expect((await env.api.get(`/v1/devices/${id}`, mine.ownerToken)).status).toBe(404)
    expect((await env.api.get(`/v1/devices/${id}/telemetry?capability=temperature`, mine.ownerToken)).status).toBe(404)
    expect((await env.api.get(`/v1/devices/${id}`, mine.makerToken)).status).toBe(404)
    const anonymous = await env.api.get(`/v1/devices/${id}`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.body.error.code).toBe('UNAUTHORIZED')
    expect((await env.api.get(`/v1/devices/${id}`, 'trellis_owner_forged')).status).toBe(401)
    expect((await env.api.get(`/v1/devices/${id}`, theirs.ownerToken)).status).toBe(200)
  })
})
