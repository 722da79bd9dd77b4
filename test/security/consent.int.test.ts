import { describe, expect, it } from 'vitest'
import { connectDevice, topics } from '@trellis/device-sdk'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Usage data (temperature at home, power, motion…) is the owner's: a maker sees the health of
// claimed devices, and more only under a grant the owner gave.

const env = useStack()

const model = { name: 'plug-1', capabilities: ['temperature', 'power', 'powerDraw', 'rssi', 'firmwareVersion'] }
type Fleet = Awaited<ReturnType<typeof seedFleet>>

// Usage values no one but the owner may read without a grant: distinctive, so a leak shows in any answer
// (no mean of them with the first readings, 21.5 and 50, contains the other, and no timestamp holds them:
// seconds never reach 87).
const TEMPERATURE = 87.125
const POWER_DRAW = 1234.5

async function reporting (fleet: Fleet, index = 0) {
  const d = fleet.devices[index]
  const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
  env.devices.push(device)
  await device.report({ temperature: 21.5, power: true, powerDraw: 50, rssi: -61, firmwareVersion: '2.1.0' }, Date.now() - 60_000)
  await device.report({ temperature: TEMPERATURE, power: true, powerDraw: POWER_DRAW, rssi: -61, firmwareVersion: '2.1.0' }, Date.now() - 1000)
  await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.powerDraw?.value === POWER_DRAW, { what: 'the reading in the owner view' })
  // A payload refused for one bad reading still holds the others: the maker's rejection list must not show them.
  const rejections = () => env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)
  const before = (await rejections()).body.rejections.length
  device.client.publish(topics.telemetry(d.id), JSON.stringify({ readings: { temperature: TEMPERATURE, powerDraw: -5 } }), { qos: 1 })
  await eventually(rejections, (r) => r.body.rejections.length > before, { what: 'the rejected payload' })
  return d
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString()
const grant = async (fleet: Fleet, body: Record<string, unknown>) => {
  const res = await env.api.post('/v1/grants', { resolution: 'raw', expiresAt: inAnHour(), ...body }, fleet.ownerToken)
  expect(res.status, JSON.stringify(res.body)).toBe(201)
  return res.body as { id: string }
}
const history = (id: string, capability: string, token: string, extra = '') =>
  env.api.get(`/v1/devices/${id}/telemetry?capability=${capability}&from=${new Date(Date.now() - 3_600_000).toISOString()}${extra}`, token)

/** Sample bodies that pass validation, so the walk reaches the handler. */
function sampleBody (key: string, f: Fleet): unknown {
  const samples: Record<string, unknown> = {
    'POST /v1/models': { name: `walk-${Math.random().toString(36).slice(2)}`, capabilities: ['temperature'] },
    'POST /v1/devices': { model: f.modelId, count: 1 },
    'POST /v1/devices/claim': { claimCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ' },
    'POST /v1/devices/{id}/commands': { set: { power: false } },
    'POST /v1/schedules': { deviceId: f.devices[0].id, cron: '0 23 * * *', command: { set: { power: false } } },
    'POST /v1/models/{id}/mapping:test': { payloads: [{ readings: { rssi: -50 } }] },
    'POST /v1/grants': { grantee: { kind: 'maker', id: f.makerId }, devices: [f.devices[0].id], capabilities: ['temperature'], expiresAt: inAnHour() },
    'POST /v1/apps': { name: 'walker' },
  }
  return samples[key] ?? {}
}

/**
 * Every route in /docs called with `token` on the fleet's first device and model, reading the answers:
 * which usage sentinels came back, and from which routes. Routes that end a session or remove things are left out.
 */
async function walkForUsage (f: Fleet, token: string): Promise<{ walked: number, leaks: string[] }> {
  const doc = (await env.api.get('/docs/json')).body as { paths: Record<string, Record<string, { parameters?: Array<{ name: string, in: string, required?: boolean }> }>> }
  const leaks: string[] = []
  let walked = 0
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const key = `${method.toUpperCase()} ${path}`
      if (method === 'delete' || key === 'POST /v1/sessions:refresh' || key === 'POST /v1/console/session') continue
      const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => path.startsWith('/v1/models/') ? f.modelId : name === 'id' ? f.devices[0].id : 'none')
      const queries = (op.parameters ?? []).some((p) => p.name === 'capability')
        ? ['temperature', 'powerDraw'].flatMap((c) => [`?capability=${c}&from=${new Date(Date.now() - 3_600_000).toISOString()}`, `?capability=${c}&from=${new Date(Date.now() - 3_600_000).toISOString()}&every=1h&agg=mean`])
        : ['']
      for (const q of queries) {
        walked++
        const controller = new AbortController()
        const body = method === 'get' ? undefined : JSON.stringify(sampleBody(key, f))
        const res = await fetch(env.stack.httpUrl + url + q, { method: method.toUpperCase(), headers: { authorization: `Bearer ${token}`, ...(body && { 'content-type': 'application/json' }) }, body, signal: controller.signal })
        let text: string
        if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
          // A stream's opening only: nothing of a device flows before an event.
          text = ''
          controller.abort()
        } else {
          text = await res.text()
        }
        if (text.includes(String(TEMPERATURE))) leaks.push(`${key}${q} gave temperature`)
        if (text.includes(String(POWER_DRAW))) leaks.push(`${key}${q} gave powerDraw`)
      }
    }
  }
  return { walked, leaks }
}

describe('consent: what a maker sees of a claimed device', () => {
  it('shows the maker the health of a claimed device and none of its usage values', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent A', model })
    const d = await reporting(fleet)
    const seen = await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    expect(seen.status).toBe(200)
    expect(seen.body.claimed).toBe(true)
    expect(seen.body.state.rssi.value).toBe(-61)
    expect(seen.body.state.firmwareVersion.value).toBe('2.1.0')
    expect(Object.keys(seen.body.state).sort()).toEqual(['firmwareVersion', 'rssi'])
    const listed = await env.api.get('/v1/devices', fleet.makerToken)
    expect(Object.keys(listed.body.devices.find((x: { id: string }) => x.id === d.id).state).sort()).toEqual(['firmwareVersion', 'rssi'])
  })
})

describe('consent: defaults', () => {
  it('shows the maker every value of a device still in its stock (unclaimed)', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Stock', model })
    const stock = (await env.api.post('/v1/devices', { model: fleet.modelId, count: 1 }, fleet.makerToken)).body.devices[0]
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: stock.id, secret: stock.secret })
    env.devices.push(device)
    await device.report({ temperature: 19.5, rssi: -70 })
    const seen = await eventually(() => env.api.get(`/v1/devices/${stock.id}`, fleet.makerToken), (r) => r.body.state?.temperature?.value === 19.5, { what: 'the stock device in the maker view' })
    expect(seen.body.claimed).toBe(false)
  })

  it('walks every route as the maker without a grant: no usage value comes back from any, and a claimed device takes no command from it', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Walk', model })
    await reporting(fleet)
    const { walked, leaks } = await walkForUsage(fleet, fleet.makerToken)
    expect(walked).toBeGreaterThanOrEqual(30)
    expect(leaks).toEqual([])
    const command = await env.api.post(`/v1/devices/${fleet.devices[0].id}/commands`, { set: { power: false } }, fleet.makerToken)
    expect(command.status).toBe(403)
    // The walk does find a leak: the owner, walked the same way, gets both values.
    const owner = await walkForUsage(fleet, fleet.ownerToken)
    expect(owner.leaks).toEqual(expect.arrayContaining([expect.stringContaining('gave temperature'), expect.stringContaining('gave powerDraw')]))
  })
  it('gives the maker fleet insight with usage withheld below the default cohort of 10 devices', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Insight', model, count: 2 })
    await reporting(fleet, 0)
    await reporting(fleet, 1)
    const insight = await env.api.get(`/v1/models/${fleet.modelId}/insight`, fleet.makerToken)
    expect(insight.status).toBe(200)
    expect(insight.body).toMatchObject({ minCohort: 10, activeDevices: 2, firmwareVersions: { '2.1.0': 2 } })
    const usage = insight.body.capabilities.filter((c: { kind: string }) => c.kind === 'usage')
    expect(usage.map((c: { capability: string }) => c.capability).sort()).toEqual(['power', 'powerDraw', 'temperature'])
    for (const c of usage) expect(c).toMatchObject({ distribution: null, readingsPerDevice: null, withheld: expect.stringContaining('at least 10') })
  })
})

describe('consent: grants', () => {
  it('with a raw grant of temperature the maker reads exactly temperature, raw, until the owner revokes it; the owner sees the reads', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Grant', model })
    const d = await reporting(fleet)
    const g = await grant(fleet, { grantee: { kind: 'maker', id: fleet.makerId }, devices: [d.id], capabilities: ['temperature'] })
    const seen = await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    expect(Object.keys(seen.body.state).sort()).toEqual(['firmwareVersion', 'rssi', 'temperature'])
    expect(seen.body.state.temperature.value).toBe(TEMPERATURE)
    const raw = await history(d.id, 'temperature', fleet.makerToken)
    expect(raw.status).toBe(200)
    // Both reports, and the valid reading of the partly refused payload.
    expect(raw.body.points.map((p: { value: number }) => p.value)).toEqual([21.5, TEMPERATURE, TEMPERATURE])
    const refused = await history(d.id, 'powerDraw', fleet.makerToken)
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe('NO_GRANT')
    // The walk with the grant: temperature, never powerDraw.
    const { leaks } = await walkForUsage(fleet, fleet.makerToken)
    expect(leaks.length).toBeGreaterThan(0)
    expect(leaks.filter((l) => l.includes('powerDraw'))).toEqual([])
    // The maker sees the grant it holds.
    const held = await env.api.get('/v1/grants', fleet.makerToken)
    expect(held.body.grants.map((x: { id: string, active: boolean }) => [x.id, x.active])).toEqual([[g.id, true]])

    const log = await eventually(() => env.api.get('/v1/me/access-log', fleet.ownerToken), (r) => r.body.records?.some((x: { kind: string }) => x.kind === 'history'), { what: 'the history read in the access log' })
    const reads = log.body.records as Array<{ actor: string, grant: string, device: string, kind: string, capabilities: string[] }>
    expect(reads.every((r) => r.actor === `maker:${fleet.makerId}` && r.grant === g.id && r.device === d.id)).toBe(true)
    expect(reads.map((r) => r.kind)).toEqual(expect.arrayContaining(['state', 'history']))
    expect(reads.flatMap((r) => r.capabilities)).not.toContain('powerDraw')

    expect((await env.api.delete(`/v1/grants/${g.id}`, fleet.ownerToken)).status).toBe(200)
    const after = await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    expect(Object.keys(after.body.state).sort()).toEqual(['firmwareVersion', 'rssi'])
    expect((await history(d.id, 'temperature', fleet.makerToken)).status).toBe(403)
    expect((await walkForUsage(fleet, fleet.makerToken)).leaks).toEqual([])
  })

  it('with an hourly grant the maker gets only every=1h aggregates and no live value', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Hourly', model })
    const d = await reporting(fleet)
    await grant(fleet, { grantee: { kind: 'maker', id: fleet.makerId }, devices: [d.id], capabilities: ['temperature'], resolution: 'hourly' })
    expect(Object.keys((await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)).body.state).sort()).toEqual(['firmwareVersion', 'rssi'])
    const raw = await history(d.id, 'temperature', fleet.makerToken)
    expect(raw.status).toBe(403)
    expect(raw.body.error.message).toContain('every=1h')
    expect((await history(d.id, 'temperature', fleet.makerToken, '&every=1m&agg=mean')).status).toBe(403)
    const hourly = await history(d.id, 'temperature', fleet.makerToken, '&every=1h&agg=mean')
    expect(hourly.status).toBe(200)
    expect(hourly.body.every).toBe('1h')
    expect(hourly.body.points.length).toBeGreaterThan(0)
  })

  it('ends a grant at its expiry', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Expiry', model })
    const d = await reporting(fleet)
    const expiresAt = Date.now() + 1500
    await grant(fleet, { grantee: { kind: 'maker', id: fleet.makerId }, devices: [d.id], capabilities: ['temperature'], expiresAt: new Date(expiresAt).toISOString() })
    const before = await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    // Read while the grant ran (a loaded machine may reach it late: then it has no value either).
    if (Date.now() < expiresAt - 200) expect(before.body.state.temperature?.value).toBe(TEMPERATURE)
    const after = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.makerToken), () => Date.now() > expiresAt, { what: 'the grant to expire' })
    expect(after.body.state.temperature).toBeUndefined()
    expect((await history(d.id, 'temperature', fleet.makerToken)).status).toBe(403)
    expect((await env.api.get('/v1/grants', fleet.makerToken)).body.grants[0].active).toBe(false)
  })

  it('covers nothing once the device changes hands', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent Release', model })
    const d = await reporting(fleet)
    await grant(fleet, { grantee: { kind: 'maker', id: fleet.makerId }, devices: [d.id], capabilities: ['temperature'] })
    const released = await env.api.post(`/v1/devices/${d.id}/release`, {}, fleet.ownerToken)
    const other = await env.api.post('/v1/owners', { email: `next-${Date.now()}@example.com`, password: 'correct horse battery' })
    expect((await env.api.post('/v1/devices/claim', { claimCode: released.body.claimCode }, other.body.token)).status).toBe(200)
    const seen = await env.api.get(`/v1/devices/${d.id}`, fleet.makerToken)
    expect(seen.body.state.temperature).toBeUndefined()
  })

  it('refuses a grant of a device the owner does not have, and to an app of another owner', async () => {
    const a = await seedFleet(env.api, { makerName: 'Consent Refuse A', model })
    const b = await seedFleet(env.api, { makerName: 'Consent Refuse B', model })
    const other = await env.api.post('/v1/grants', { grantee: { kind: 'maker', id: a.makerId }, devices: [b.devices[0].id], capabilities: ['temperature'], expiresAt: inAnHour() }, a.ownerToken)
    expect(other.status).toBe(404)
    const app = await env.api.post('/v1/apps', { name: 'b app' }, b.ownerToken)
    const toApp = await env.api.post('/v1/grants', { grantee: { kind: 'app', id: app.body.id }, devices: [a.devices[0].id], capabilities: ['temperature'], expiresAt: inAnHour() }, a.ownerToken)
    expect(toApp.status).toBe(404)
    const past = await env.api.post('/v1/grants', { grantee: { kind: 'maker', id: a.makerId }, devices: [a.devices[0].id], capabilities: ['temperature'], expiresAt: new Date(Date.now() - 1000).toISOString() }, a.ownerToken)
    expect(past.status).toBe(400)
  })
})

describe('consent: apps', () => {
  it('gives an app its own token that reads nothing without a grant, exactly what a grant names with one, never commands, and stops when removed', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Consent App', model })
    const d = await reporting(fleet)
    const app = await env.api.post('/v1/apps', { name: 'energy dashboard' }, fleet.ownerToken)
    expect(app.status).toBe(201)
    expect(app.body.token).toMatch(/^trellis_app_/)
    const token = app.body.token as string
    expect((await env.api.get(`/v1/devices/${d.id}`, token)).status).toBe(404)
    expect((await walkForUsage(fleet, token)).leaks).toEqual([])

    const g = await grant(fleet, { grantee: { kind: 'app', id: app.body.id }, devices: [d.id], capabilities: ['powerDraw'] })
    const seen = await env.api.get(`/v1/devices/${d.id}`, token)
    expect(seen.status).toBe(200)
    expect(Object.keys(seen.body.state)).toEqual(['powerDraw'])
    expect(seen.body.state.powerDraw.value).toBe(POWER_DRAW)
    expect((await history(d.id, 'powerDraw', token)).body.points.length).toBe(2)
    expect((await history(d.id, 'temperature', token)).status).toBe(403)
    expect((await env.api.post(`/v1/devices/${d.id}/commands`, { set: { power: false } }, token)).status).toBe(403)
    expect((await env.api.get('/v1/grants', token)).body.grants.map((x: { id: string }) => x.id)).toEqual([g.id])
    const walked = await walkForUsage(fleet, token)
    expect(walked.leaks.filter((l) => l.includes('temperature'))).toEqual([])
    const log = await eventually(() => env.api.get('/v1/me/access-log', fleet.ownerToken), (r) => r.body.records?.length > 0, { what: 'the app read in the access log' })
    expect(log.body.records[0]).toMatchObject({ actor: `app:${app.body.id}`, grant: g.id, device: d.id })

    expect((await env.api.delete(`/v1/apps/${app.body.id}`, fleet.ownerToken)).status).toBe(200)
    expect((await env.api.get(`/v1/devices/${d.id}`, token)).status).toBe(401)
    expect((await env.api.get(`/v1/grants/${g.id}`, fleet.ownerToken)).body.active).toBe(false)
  })
})
