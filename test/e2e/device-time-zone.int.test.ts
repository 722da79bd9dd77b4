import { describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { useStack } from '../support/file-stack.js'
import { subackCodes } from '../support/mqtt.js'
import { eventually } from '../support/wait.js'

/**
 * A device's own time zone (issue 13, item 2): Tasmota-style firmware sends
 * its local `Time` without an offset. One model's devices installed in
 * several countries each have theirs read in their own zone, set when the
 * maker provisions them and changed later by the maker (before a claim) or
 * the owner. Raw mqtt.js clients play the firmware byte for byte.
 */

const env = useStack()

// Zones without summer time, so the expected offsets hold whatever day the test runs.
const HOUR = 3_600_000
const offsets = { 'Asia/Tokyo': 9 * HOUR, 'Asia/Kolkata': 5.5 * HOUR, 'America/Sao_Paulo': -3 * HOUR, 'Asia/Dubai': 4 * HOUR }

const relay = (name: string) => ({
  name,
  capabilities: ['power', 'powerDraw'],
  mapping: {
    format: 'json',
    topics: {
      telemetry: [{ topic: 'tele/{device}/SENSOR' }],
      commands: 'cmnd/{device}/{key}',
    },
    // The model's zone: the fallback for a device that has none of its own.
    timestamp: { path: 'Time', unit: 'iso', zone: 'America/Sao_Paulo' },
    readings: [{ path: 'ENERGY.Power', capability: 'powerDraw' }],
    commands: { format: 'template', template: '{value}', set: [{ path: 'POWER', capability: 'power', map: { ON: true, OFF: false } }], ack: { report: true } },
  },
})

/** A zone as the runtime's zone database spells it, which is how the hub keeps it (Node 20: `Asia/Kolkata` is `Asia/Calcutta`). */
const spelled = (zone: string): string => new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone

/** Tasmota's `Time`: wall-clock text without an offset, to the second. */
function tasmotaTime (wallMs: number): string {
  return new Date(wallMs).toISOString().slice(0, 19)
}

async function connect (d: { id: string, secret: string }): Promise<MqttClient> {
  const client = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
  env.clients.push(client)
  return client
}

async function provision (makerToken: string, modelId: string, timeZone?: string) {
  const res = await env.api.post('/v1/devices', { model: modelId, count: 1, ...(timeZone !== undefined && { timeZone }) }, makerToken)
  expect(res.status, JSON.stringify(res.body)).toBe(201)
  return { ...(res.body.devices[0] as { id: string, secret: string, claimCode: string }), timeZone: res.body.timeZone as string | null }
}

/** The stored powerDraw points of a device over the last two days, once `count` are there. */
async function storedPoints (ownerToken: string, deviceId: string, count: number): Promise<Array<{ ts: string, value: number }>> {
  const from = new Date(Date.now() - 48 * HOUR).toISOString()
  const res = await eventually(
    () => env.api.get(`/v1/devices/${deviceId}/telemetry?capability=powerDraw&from=${encodeURIComponent(from)}`, ownerToken),
    (r) => r.status === 200 && r.body.points.length >= count,
    { what: `${count} stored points of ${deviceId}` })
  return res.body.points
}

describe('a device\'s own time zone', () => {
  it('reads the same local Time of two devices of one model in each one\'s zone, and a device without one in the model\'s', async () => {
    const maker = await env.api.post('/v1/makers', { name: 'Tasmo Zones' })
    const model = await env.api.post('/v1/models', relay('tasmo-zoned-1'), maker.body.token)
    expect(model.status, JSON.stringify(model.body)).toBe(201)
    const tokyo = await provision(maker.body.token, model.body.id, 'Asia/Tokyo')
    const kolkata = await provision(maker.body.token, model.body.id, 'Asia/Kolkata')
    const plain = await provision(maker.body.token, model.body.id)
    expect([tokyo.timeZone, kolkata.timeZone, plain.timeZone]).toEqual(['Asia/Tokyo', spelled('Asia/Kolkata'), null])
    const owner = await env.api.post('/v1/owners', { email: `zones-${Date.now()}@example.com`, password: 'correct horse battery' })
    for (const d of [tokyo, kolkata, plain]) expect((await env.api.post('/v1/devices/claim', { claimCode: d.claimCode }, owner.body.token)).status).toBe(200)

    // Twelve hours ago on a UTC wall clock: in the past in every zone above, and within the hub's 21-day window.
    const wall = Math.floor((Date.now() - 12 * HOUR) / 1000) * 1000
    const time = tasmotaTime(wall)
    for (const [i, d] of [tokyo, kolkata, plain].entries()) {
      const fw = await connect(d)
      expect(await subackCodes(fw, [`cmnd/${d.id}/#`])).toEqual([1])
      await fw.publishAsync(`tele/${d.id}/SENSOR`, `{"Time":"${time}","ENERGY":{"Power":${10 + i}}}`, { qos: 1 })
    }

    const [atTokyo] = await storedPoints(owner.body.token, tokyo.id, 1)
    const [atKolkata] = await storedPoints(owner.body.token, kolkata.id, 1)
    const [atPlain] = await storedPoints(owner.body.token, plain.id, 1)
    expect(atTokyo).toEqual({ ts: new Date(wall - offsets['Asia/Tokyo']).toISOString(), value: 10 })
    expect(atKolkata).toEqual({ ts: new Date(wall - offsets['Asia/Kolkata']).toISOString(), value: 11 })
    expect(atPlain).toEqual({ ts: new Date(wall - offsets['America/Sao_Paulo']).toISOString(), value: 12 })
    // The same text, three and a half hours apart: Tokyo's and Kolkata's offsets differ by that much.
    expect(Date.parse(atKolkata.ts) - Date.parse(atTokyo.ts)).toBe(3.5 * HOUR)
    expect(env.stack.hub.deadLetters.forModel(model.body.id)).toEqual([])

    // The owner sees each device's zone.
    expect((await env.api.get(`/v1/devices/${tokyo.id}`, owner.body.token)).body.timeZone).toBe('Asia/Tokyo')
    expect((await env.api.get(`/v1/devices/${plain.id}`, owner.body.token)).body.timeZone).toBeNull()
  })

  it('refuses a time zone that is not an IANA zone at provisioning with 400 and the reason, and provisions nothing', async () => {
    const maker = await env.api.post('/v1/makers', { name: 'Tasmo Typos' })
    const model = await env.api.post('/v1/models', relay('tasmo-zoned-2'), maker.body.token)
    for (const timeZone of ['Europe/Nowhere', '+01:00', 'CET; DROP TABLE devices', '']) {
      const res = await env.api.post('/v1/devices', { model: model.body.id, count: 1, timeZone }, maker.body.token)
      expect(res.status, timeZone).toBe(400)
      expect(res.body.error.code).toBe('INVALID_BODY')
      expect(res.body.error.message).toContain('timeZone: an IANA time zone such as Europe/Berlin or UTC')
    }
    expect((await env.api.get('/v1/devices', maker.body.token)).body.devices).toEqual([])
    // A zone spelled in another case is one the runtime knows: it is kept as the zone database spells it.
    expect((await provision(maker.body.token, model.body.id, 'europe/berlin')).timeZone).toBe('Europe/Berlin')
  })

  it('lets the maker change an unclaimed device\'s zone and the owner a claimed one; the next reading is read in the new zone', async () => {
    const maker = await env.api.post('/v1/makers', { name: 'Tasmo Movers' })
    const model = await env.api.post('/v1/models', relay('tasmo-zoned-3'), maker.body.token)
    const d = await provision(maker.body.token, model.body.id, 'Asia/Tokyo')

    // Before a claim the zone is the maker's: a box shipped to another country is set right.
    const byMaker = await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: maker.body.token, body: { timeZone: 'Asia/Kolkata' } })
    expect(byMaker.status, JSON.stringify(byMaker.body)).toBe(200)
    expect(byMaker.body).toMatchObject({ id: d.id, claimed: false, timeZone: spelled('Asia/Kolkata') })
    const bad = await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: maker.body.token, body: { timeZone: 'Mars/Olympus_Mons' } })
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toContain('timeZone: an IANA time zone such as Europe/Berlin or UTC')

    const owner = await env.api.post('/v1/owners', { email: `movers-${Date.now()}@example.com`, password: 'correct horse battery' })
    expect((await env.api.post('/v1/devices/claim', { claimCode: d.claimCode }, owner.body.token)).status).toBe(200)
    expect((await env.api.get(`/v1/devices/${d.id}`, owner.body.token)).body.timeZone).toBe(spelled('Asia/Kolkata'))

    const fw = await connect(d)
    const wall = Math.floor((Date.now() - 12 * HOUR) / 1000) * 1000
    await fw.publishAsync(`tele/${d.id}/SENSOR`, `{"Time":"${tasmotaTime(wall)}","ENERGY":{"Power":1}}`, { qos: 1 })
    expect((await storedPoints(owner.body.token, d.id, 1))[0].ts).toBe(new Date(wall - offsets['Asia/Kolkata']).toISOString())

    // After a claim it is the owner's: the owner moved house; the maker neither changes nor sees it.
    const claimedByMaker = await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: maker.body.token, body: { timeZone: 'Asia/Tokyo' } })
    expect(claimedByMaker.status).toBe(409)
    expect(claimedByMaker.body.error).toEqual({ code: 'DEVICE_CLAIMED', message: expect.stringContaining('its owner sets its time zone') })
    const moved = await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: owner.body.token, body: { timeZone: 'Asia/Dubai' } })
    expect(moved.status, JSON.stringify(moved.body)).toBe(200)
    expect(moved.body).toMatchObject({ id: d.id, timeZone: 'Asia/Dubai' })
    expect((await env.api.get(`/v1/devices/${d.id}`, maker.body.token)).body).not.toHaveProperty('timeZone')
    expect((await env.api.get('/v1/devices', maker.body.token)).body.devices[0]).not.toHaveProperty('timeZone')

    const later = wall + 60_000
    await fw.publishAsync(`tele/${d.id}/SENSOR`, `{"Time":"${tasmotaTime(later)}","ENERGY":{"Power":2}}`, { qos: 1 })
    const points = await storedPoints(owner.body.token, d.id, 2)
    expect(points.map((p) => p.ts).sort()).toContain(new Date(later - offsets['Asia/Dubai']).toISOString())

    // Another owner cannot reach it; null gives the device back the model's zone.
    const stranger = await env.api.post('/v1/owners', { email: `stranger-${Date.now()}@example.com`, password: 'correct horse battery' })
    expect((await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: stranger.body.token, body: { timeZone: 'UTC' } })).status).toBe(404)
    const cleared = await env.api.call('PATCH', `/v1/devices/${d.id}`, { token: owner.body.token, body: { timeZone: null } })
    expect(cleared.body.timeZone).toBeNull()
    const last = wall + 120_000
    await fw.publishAsync(`tele/${d.id}/SENSOR`, `{"Time":"${tasmotaTime(last)}","ENERGY":{"Power":3}}`, { qos: 1 })
    const all = await storedPoints(owner.body.token, d.id, 3)
    expect(all.map((p) => p.ts)).toContain(new Date(last - offsets['America/Sao_Paulo']).toISOString())
  })
})
