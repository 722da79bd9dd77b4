import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { fakeHubApi, seedTenant, type FakeHubApi } from '../../support/fake-context.js'

// Each test hashes passwords with scrypt and walks many routes: room for a loaded machine.
vi.setConfig({ testTimeout: 30_000 })

// Every route in /docs/json, called through app.inject() by each kind of caller: the access rule it
// declares is the one it enforces, and a refusal has the catalogue's shape.

const ADMIN_TOKEN = 'trellis_admin_unit-test-admin-token-0123456789abcdef'

let api: FakeHubApi
beforeAll(async () => { api = await fakeHubApi({ adminToken: ADMIN_TOKEN }) }, 60_000)
afterAll(async () => { await api?.close() })

type Scope = 'owner' | 'maker' | 'admin'
const allowed: Record<string, Scope[]> = {
  public: ['owner', 'maker', 'admin'],
  maker: ['maker'],
  owner: ['owner'],
  'owner-or-maker': ['owner', 'maker'],
  'owner-or-grantee': ['owner', 'maker'],
  admin: ['admin'],
  'maker-or-admin': ['maker', 'admin'],
  authenticated: ['owner', 'maker', 'admin'],
}

const bodies: Record<string, unknown> = {
  'POST /v1/makers': { name: 'Access Walk' },
  'POST /v1/owners': { email: 'walk@example.com', password: 'correct horse battery' },
  'POST /v1/sessions': { email: 'nobody@example.com', password: 'wrong guess' },
  'POST /v1/models': { name: 'walk-model', capabilities: ['temperature'] },
  'PUT /v1/models/{id}/mapping': { format: 'json', readings: [{ path: 't', capability: 'temperature' }] },
  'POST /v1/models/{id}/mapping:test': { payloads: [{ readings: { temperature: 20 } }] },
  'POST /v1/devices': { model: 'md-none', count: 1 },
  'POST /v1/devices/claim': { claimCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ' },
  'POST /v1/devices/{id}/commands': { set: { power: true } },
  'PATCH /v1/devices/{id}': { timeZone: 'Europe/Berlin' },
  'POST /v1/schedules': { deviceId: 'dev-none', cron: '0 3 * * *', command: { set: { power: true } } },
  'PATCH /v1/schedules/{id}': { paused: true },
  'POST /v1/automations': { name: 'walk', trigger: { type: 'presence', deviceId: 'dev-none' }, actions: [{ deviceId: 'dev-none', command: { set: { power: true } } }] },
  'PUT /v1/automations/{id}': { name: 'walk', trigger: { type: 'presence', deviceId: 'dev-none' }, actions: [{ deviceId: 'dev-none', command: { set: { power: true } } }] },
  'POST /v1/automations:test': { rule: { name: 'walk', trigger: { type: 'presence', deviceId: 'dev-none' }, actions: [{ deviceId: 'dev-none', command: { set: { power: true } } }] } },
}

describe('access rules, through inject', () => {
  it('answers 401 without a token and 403 to the wrong kind of caller on every guarded route, and lets the right kind through', async () => {
    const t = await seedTenant(api, 'Access')
    const doc = (await api.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { 'x-access': string }>> }
    const tokens: Record<Scope, string> = { owner: t.ownerToken, maker: t.makerToken, admin: ADMIN_TOKEN }
    const wrong: string[] = []
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, access: op['x-access'] })))
    // Refreshing revokes the caller's token: last.
    routes.sort((a, b) => Number(a.path === '/v1/sessions:refresh') - Number(b.path === '/v1/sessions:refresh'))
    expect(routes.length).toBeGreaterThanOrEqual(36)
    for (const r of routes) {
      const key = `${r.method} ${r.path}`
      const url = r.path.replace(/\{\w+\}/g, 'nothing-here')
      const payload = bodies[key] ?? (r.method === 'GET' || r.method === 'DELETE' ? undefined : {})
      const call = async (token?: string) => await api.inject({ method: r.method as 'GET', url, token, ...(payload !== undefined && { payload: payload as object }) })
      if (r.access !== 'public') {
        const none = await call()
        if (none.statusCode !== 401 || none.json().error.code !== 'UNAUTHORIZED') wrong.push(`${key} without a token: ${none.statusCode}`)
        const bad = await call('trellis_owner_not-a-real-token')
        if (bad.statusCode !== 401) wrong.push(`${key} with an unknown token: ${bad.statusCode}`)
      }
      for (const scope of ['owner', 'maker', 'admin'] as Scope[]) {
        if (key === 'GET /v1/stream' && allowed[r.access].includes(scope)) continue // opens a stream; covered below
        const res = await call(tokens[scope])
        if (res.headers['content-type']?.toString().startsWith('text/')) continue // /metrics, /docs as HTML: public
        const mayCall = allowed[r.access]?.includes(scope)
        if (mayCall && ['UNAUTHORIZED', 'FORBIDDEN'].includes(res.json()?.error?.code)) wrong.push(`${key} as ${scope}: ${res.statusCode}, though its rule is ${r.access}`)
        if (!mayCall && (res.statusCode !== 403 || res.json().error.code !== 'FORBIDDEN')) wrong.push(`${key} as ${scope}: ${res.statusCode}, expected 403 (rule ${r.access})`)
        if (res.statusCode >= 500) wrong.push(`${key} as ${scope}: ${res.statusCode} ${res.body}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('opens the live stream for an owner only', async () => {
    const t = await seedTenant(api, 'Streamer')
    const res = await api.inject({ method: 'GET', url: '/v1/stream', token: t.ownerToken })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/event-stream')
    expect((await api.inject({ method: 'GET', url: '/v1/stream', token: t.makerToken })).statusCode).toBe(403)
  })
})

describe("a device's time zone, through inject", () => {
  it('lets a maker change only its own unclaimed devices and an owner only theirs; others get 404 and the zone stays', async () => {
    const a = await seedTenant(api, 'Zoner A')
    const b = await seedTenant(api, 'Zoner B')
    const [claimed, unclaimed] = a.devices
    const patch = async (id: string, token: string, timeZone: string | null) => await api.inject({ method: 'PATCH', url: `/v1/devices/${id}`, token, payload: { timeZone } })
    const zoneOf = async (id: string, token: string) => (await api.inject({ method: 'GET', url: `/v1/devices/${id}`, token })).json().timeZone

    expect((await patch(unclaimed.id, b.makerToken, 'Asia/Tokyo')).statusCode).toBe(404)
    expect((await patch(claimed.id, b.ownerToken, 'Asia/Tokyo')).statusCode).toBe(404)
    expect((await patch(unclaimed.id, a.ownerToken, 'Asia/Tokyo')).statusCode).toBe(404)
    expect((await patch(claimed.id, a.makerToken, 'Asia/Tokyo')).json().error.code).toBe('DEVICE_CLAIMED')
    expect(await zoneOf(claimed.id, a.ownerToken)).toBeNull()
    expect(await zoneOf(unclaimed.id, a.makerToken)).toBeNull()

    expect((await patch(unclaimed.id, a.makerToken, 'Asia/Tokyo')).json()).toMatchObject({ id: unclaimed.id, timeZone: 'Asia/Tokyo' })
    expect((await patch(claimed.id, a.ownerToken, 'Europe/Berlin')).json()).toMatchObject({ id: claimed.id, timeZone: 'Europe/Berlin' })
    expect(await zoneOf(claimed.id, a.ownerToken)).toBe('Europe/Berlin')
    // The maker does not see where its device's owner lives.
    expect((await api.inject({ method: 'GET', url: `/v1/devices/${claimed.id}`, token: a.makerToken })).json()).not.toHaveProperty('timeZone')
  })
})

describe('validation and error shapes, through inject', () => {
  it('answers a body that breaks its schema with 400 INVALID_BODY naming the field', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/owners', payload: { email: 'not-an-email', password: 'correct horse battery' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: { code: 'INVALID_BODY', message: expect.stringContaining('email') } })
  })

  it('answers a bad query with 400 INVALID_REQUEST', async () => {
    const t = await seedTenant(api, 'Querier')
    const res = await api.inject({ method: 'GET', url: '/v1/devices?limit=0', token: t.ownerToken })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('INVALID_REQUEST')
  })

  it('maps a domain refusal through the one table: a taken email is 409 EMAIL_TAKEN', async () => {
    const payload = { email: 'twice@example.com', password: 'correct horse battery' }
    expect((await api.inject({ method: 'POST', url: '/v1/owners', payload })).statusCode).toBe(201)
    const again = await api.inject({ method: 'POST', url: '/v1/owners', payload })
    expect(again.statusCode).toBe(409)
    expect(again.json().error.code).toBe('EMAIL_TAKEN')
  })

  it('answers an unknown route with 404 ROUTE_NOT_FOUND pointing at /docs', async () => {
    const res = await api.inject({ method: 'GET', url: '/v1/nothing' })
    expect(res.statusCode).toBe(404)
    expect(res.json().error).toEqual({ code: 'ROUTE_NOT_FOUND', message: expect.stringContaining('/docs') })
  })
})

describe('route declarations', () => {
  it('declare every catalogue error their handler can throw', async () => {
    const { errors } = await import('../../../hub/src/api/errors.js')
    const { errorCodesOf } = await import('../../../hub/src/api/route.js')
    // What each catalogue constructor answers, and the helpers that throw on a route's behalf.
    const thrown: Array<[RegExp, string]> = Object.entries(errors).filter(([name]) => name !== 'invalid')
      .map(([name, make]) => [new RegExp(`errors\\.${name}\\(`), (make as (...a: unknown[]) => { code: string })('x', 'x').code])
    thrown.push([/\b(visibleDevice|ownModel|owned)\(/, 'NOT_FOUND'], [/throttle\.(take|check)\(/, 'RATE_LIMITED'])
    const missing: string[] = []
    for (const def of api.routes) {
      const source = def.handler.toString()
      const declared = errorCodesOf(def)
      for (const [pattern, code] of thrown) if (pattern.test(source) && !declared.includes(code as never)) missing.push(`${def.method} ${def.path} throws ${code}`)
    }
    expect(missing).toEqual([])
  })
})
