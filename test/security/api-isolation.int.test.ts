import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { route, type RouteDef } from '@trellis/hub'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'

// Every route in /docs, walked as every kind of stranger. The two test-only routes below forget their
// guard on purpose, to show the walk catches it.
const testOnlyRoutes = (): RouteDef<any, any, any, any>[] => [
  route({
    method: 'GET',
    path: '/v1/test-only/devices/{id}',
    operationId: 'testOnlyDevice',
    response: z.object({ id: z.string(), seen: z.boolean() }),
    summary: 'TEST ONLY: declares an access rule but forgets to check that the device is the caller\'s',
    tags: ['test-only'],
    access: 'owner-or-maker',
    params: z.object({ id: z.string() }),
    handler: async ({ params }) => ({ id: params.id, seen: true }),
  }),
  route({
    method: 'GET',
    path: '/v1/test-only/fleet',
    operationId: 'testOnlyFleet',
    response: z.object({ leaked: z.boolean() }),
    summary: 'TEST ONLY: forgets its guard altogether',
    tags: ['test-only'],
    access: 'public',
    handler: async () => ({ leaked: true }),
  }),
  route({
    method: 'GET',
    path: '/v1/test-only/crash',
    operationId: 'testOnlyCrash',
    response: z.null(),
    summary: 'TEST ONLY: throws, to show no stack trace leaves the hub',
    tags: ['test-only'],
    access: 'admin',
    handler: async () => { throw new Error('secret internals at /srv/trellis/hub.ts:42') },
  }),
]

/** Routes meant for anyone; any other public route is a forgotten guard. */
const publicRoutes = new Set(['GET /healthz', 'GET /metrics', 'GET /docs', 'GET /docs/json', 'POST /v1/makers', 'POST /v1/owners', 'POST /v1/sessions', 'POST /v1/console/session'])

const ADMIN_TOKEN = 'trellis_admin_test-only-admin-token-0123456789abcdef'

let influx: TestInflux
let stack: TestStack
let api: ApiClient

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({
    influxUrl: influx.url,
    api: {
      adminToken: ADMIN_TOKEN,
      extraRoutes: testOnlyRoutes,
      rateLimits: { signup: { perSecond: 0.001, burst: 12 }, failedLogin: { perSecond: 0.001, burst: 5 }, failedClaim: { perSecond: 0.001, burst: 6 } },
    },
  })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await stack?.close()
  await influx?.dispose()
})

/** Routes that answer a never-ending stream: read only its opening, where the caller's own view is announced. */
const streamRoutes = new Set(['GET /v1/stream'])

async function openBriefly (url: string, token?: string): Promise<{ status: number, body: any }> {
  const controller = new AbortController()
  const res = await fetch(stack.httpUrl + url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: controller.signal })
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return { status: res.status, body: await res.json() }
  const reader = res.body!.getReader()
  let text = ''
  // The opening `ready` event is enough to see whose devices the stream covers.
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read()
    if (done) break
    text += Buffer.from(value).toString('utf8')
  }
  controller.abort()
  return { status: res.status, body: text }
}

interface Violation { route: string, as: string, status: number, why: string }

/** Sample bodies that pass validation, so a stranger is stopped by the guard rather than by a 400. */
function sampleBody (key: string, a: Tenant): unknown {
  const samples: Record<string, unknown> = {
    'POST /v1/models': { name: `walk-${Math.random().toString(36).slice(2)}`, capabilities: ['temperature'] },
    'POST /v1/devices': { model: a.modelId, count: 1 },
    'POST /v1/devices/claim': { claimCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ' },
    'POST /v1/devices/{id}/commands': { set: { power: true } },
    'PATCH /v1/devices/{id}': { timeZone: 'Europe/Berlin' },
    'POST /v1/schedules': { deviceId: a.devices[0].id, cron: '0 23 * * *', timezone: 'Europe/Berlin', command: { set: { power: false } } },
    'PATCH /v1/schedules/{id}': { paused: true },
    'POST /v1/automations': automationOf(a),
    'PUT /v1/automations/{id}': automationOf(a),
    'POST /v1/automations:test': { rule: automationOf(a), days: 1 },
    'POST /v1/apps': { name: 'walker app' },
    'POST /v1/grants': { grantee: { kind: 'maker', id: a.makerId }, devices: [a.devices[0].id], capabilities: ['temperature'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
  }
  return samples[key] ?? {}
}

/** A rule on A's devices: a stranger may neither create, replace nor replay it. */
function automationOf (a: Tenant) {
  return { name: 'walk', trigger: { type: 'reading', deviceId: a.devices[0].id, capability: 'temperature', op: 'above', value: 30 }, actions: [{ deviceId: a.devices[1].id, command: { set: { power: false } } }] }
}

interface Tenant {
  makerId: string, makerToken: string, modelId: string, ownerId: string, ownerToken: string
  devices: Array<{ id: string, secret: string, claimCode: string }>
  tokenIds: string[]
  scheduleId: string
  automationId: string
  appId: string
  appToken: string
  grantId: string
}

async function tenant (name: string): Promise<Tenant> {
  const fleet = await seedFleet(api, { makerName: name, count: 2 })
  const tokens = await api.get('/v1/tokens', fleet.ownerToken)
  const schedule = await api.post('/v1/schedules', { deviceId: fleet.devices[0].id, cron: '0 3 * * *', command: { set: { power: false } } }, fleet.ownerToken)
  if (schedule.status !== 201) throw new Error(`schedule creation failed: ${JSON.stringify(schedule.body)}`)
  const automation = await api.post('/v1/automations', { name: 'mine', trigger: { type: 'presence', deviceId: fleet.devices[0].id }, actions: [{ deviceId: fleet.devices[1].id, command: { set: { power: true } } }] }, fleet.ownerToken)
  if (automation.status !== 201) throw new Error(`automation creation failed: ${JSON.stringify(automation.body)}`)
  // An app of the owner's with a grant on one of the owner's devices: a stranger to every other tenant.
  const app = await api.post('/v1/apps', { name: `${name} app` }, fleet.ownerToken)
  const grant = await api.post('/v1/grants', { grantee: { kind: 'app', id: app.body.id }, devices: [fleet.devices[0].id], capabilities: ['temperature'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, fleet.ownerToken)
  if (grant.status !== 201) throw new Error(`grant failed: ${JSON.stringify(grant.body)}`)
  return { ...fleet, tokenIds: tokens.body.tokens.map((t: { id: string }) => t.id), scheduleId: schedule.body.id, automationId: automation.body.id, appId: app.body.id, appToken: app.body.token, grantId: grant.body.id }
}

/** What of A's must never show in a stranger's answer. */
function secretsOf (a: Tenant): string[] {
  return [a.makerId, a.modelId, a.ownerId, a.scheduleId, a.automationId, a.appId, a.appToken, a.grantId, ...a.tokenIds, ...a.devices.flatMap((d) => [d.id, d.secret])]
}

function concretePath (path: string, a: Tenant): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (path.startsWith('/v1/models/')) return a.modelId
    if (path.startsWith('/v1/tokens/')) return a.tokenIds[0]
    if (path.startsWith('/v1/schedules/')) return a.scheduleId
    if (path.startsWith('/v1/automations/')) return a.automationId
    if (path.startsWith('/v1/apps/')) return a.appId
    if (path.startsWith('/v1/grants/')) return a.grantId
    if (name === 'id') return a.devices[0].id
    return `${name}-that-does-not-exist`
  })
}

function queryFor (parameters: Array<{ name: string, in: string, required?: boolean }>): string {
  const samples: Record<string, string> = { capability: 'temperature' }
  const q = parameters.filter((p) => p.in === 'query' && p.required).map((p) => `${p.name}=${encodeURIComponent(samples[p.name] ?? 'x')}`)
  return q.length ? `?${q.join('&')}` : ''
}

async function walk (a: Tenant, strangers: Array<{ as: string, token: string }>): Promise<{ walked: string[], violations: Violation[] }> {
  const doc = (await api.get('/docs')).body as { paths: Record<string, Record<string, { 'x-access': string, parameters: any[] }>> }
  const violations: Violation[] = []
  const walked: string[] = []
  const forbidden = secretsOf(a)
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const key = `${method.toUpperCase()} ${path}`
      walked.push(key)
      if (op['x-access'] === 'public') {
        if (!publicRoutes.has(key)) violations.push({ route: key, as: 'anyone', status: 0, why: 'public route not on the list of routes meant for anyone' })
        continue
      }
      const url = concretePath(path, a) + queryFor(op.parameters ?? [])
      const body = method === 'get' || method === 'delete' ? undefined : sampleBody(key, a)
      // Refreshing acts on the caller's own token only (and revokes it): strangers have nothing of A's to reach there.
      const ownTokenOnly = key === 'POST /v1/sessions:refresh'
      const callers = [{ as: 'no token', token: undefined as string | undefined }, { as: 'a wrong token', token: 'trellis_owner_not-a-real-token' }, ...(ownTokenOnly ? [] : strangers)]
      for (const caller of callers) {
        const res = streamRoutes.has(key) ? await openBriefly(url, caller.token) : await api.call(method.toUpperCase(), url, { token: caller.token, body })
        const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
        // An id the caller itself sent may be echoed ("no device X that you can see"); anything else is a leak.
        const sent = url + JSON.stringify(body ?? '')
        const leaked = forbidden.find((s) => text.includes(s) && !sent.includes(s))
        if (res.status >= 500) violations.push({ route: key, as: caller.as, status: res.status, why: 'server error' })
        else if (!caller.token || caller.as === 'a wrong token') {
          if (res.status !== 401) violations.push({ route: key, as: caller.as, status: res.status, why: 'expected 401' })
        } else if (res.status === 401) {
          violations.push({ route: key, as: caller.as, status: res.status, why: 'a valid token was refused as unknown' })
        } else if (res.status < 300 && (path.includes('{') || leaked)) {
          violations.push({ route: key, as: caller.as, status: res.status, why: leaked ? `answered with ${leaked} of another tenant` : 'reached another tenant\'s resource' })
        } else if (res.status >= 300 && ![401, 403, 404, 409, 422, 400].includes(res.status)) {
          violations.push({ route: key, as: caller.as, status: res.status, why: 'unexpected status' })
        } else if (res.status >= 400 && (res.body?.error?.code === undefined || leaked)) {
          violations.push({ route: key, as: caller.as, status: res.status, why: leaked ? `error names ${leaked}` : 'error not in the catalogue shape' })
        }
      }
    }
  }
  return { walked, violations }
}

describe('API isolation: every route in /docs, walked as strangers', () => {
  it("answers 401/403/404 to no token, a wrong token, another owner, another maker and another owner's app on every route, and catches a forgotten guard", async () => {
    const a = await tenant('Maker A')
    const b = await tenant('Maker B')
    const { walked, violations } = await walk(a, [{ as: "another owner's token", token: b.ownerToken }, { as: "another maker's token", token: b.makerToken }, { as: "another owner's app", token: b.appToken }])
    expect(walked.length).toBeGreaterThanOrEqual(20)
    const real = violations.filter((v) => !v.route.includes('/test-only/'))
    expect(real, JSON.stringify(real, null, 1)).toEqual([])
    // The walk fails a route that forgets its guard:
    const caught = new Set(violations.filter((v) => v.route.includes('/test-only/')).map((v) => `${v.route} as ${v.as}: ${v.why}`))
    expect(caught).toContain("GET /v1/test-only/devices/{id} as another owner's token: reached another tenant's resource")
    expect(caught).toContain("GET /v1/test-only/devices/{id} as another maker's token: reached another tenant's resource")
    expect(caught).toContain('GET /v1/test-only/fleet as anyone: public route not on the list of routes meant for anyone')
  })

  it('lets the platform admin read the audit log and keeps owners out of it', async () => {
    const owner = await tenant('Maker C')
    expect((await api.get('/v1/audit', ADMIN_TOKEN)).status).toBe(200)
    const denied = await api.get('/v1/audit', owner.ownerToken)
    expect(denied.status).toBe(403)
    expect(denied.body.error.code).toBe('FORBIDDEN')
  })
})

describe('API hardening', () => {
  it('answers an oversized body with 413 and malformed JSON with 400, in the error shape', async () => {
    const big = await api.call('POST', '/v1/makers', { raw: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) })
    expect(big.status).toBe(413)
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE')
    const bad = await api.call('POST', '/v1/makers', { raw: '{"name": ' })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) })
  })

  it('never sends a stack trace, and sends security headers', async () => {
    const res = await api.get('/v1/test-only/crash', ADMIN_TOKEN)
    expect(res.status).toBe(500)
    expect(res.body).toEqual({ error: { code: 'INTERNAL', message: expect.any(String) } })
    expect(JSON.stringify(res.body)).not.toMatch(/hub\.ts|secret internals|at /)
    for (const h of ['x-content-type-options', 'x-frame-options', 'referrer-policy', 'content-security-policy']) expect(res.headers.get(h), h).toBeTruthy()
  })

  it('rate-limits failed claims, so claim codes cannot be brute-forced, even a right code once the budget is spent', async () => {
    const a = await tenant('Maker D')
    const spare = a.devices[1]
    await api.post(`/v1/devices/${spare.id}/release`, {}, a.ownerToken)
    const owner = await api.post('/v1/owners', { email: `guesser-${Date.now()}@example.com`, password: 'correct horse battery' })
    let tries = 0
    let status = 0
    while (tries < 20 && status !== 429) {
      tries++
      status = (await api.post('/v1/devices/claim', { claimCode: `GUES-S${String(tries).padStart(3, '0')}-AAAA-AAAA` }, owner.body.token)).status
    }
    expect(status).toBe(429)
    expect(tries).toBeLessThanOrEqual(7)
    const released = await api.get(`/v1/devices/${spare.id}`, a.makerToken)
    expect(released.body.claimed).toBe(false)
  })

  it('rate-limits failed logins per address and account, and sign-ups per address', async () => {
    const email = `target-${Date.now()}@example.com`
    await api.post('/v1/owners', { email, password: 'correct horse battery' })
    let status = 0
    for (let i = 0; i < 10 && status !== 429; i++) status = (await api.post('/v1/sessions', { email, password: `wrong guess ${i}` })).status
    expect(status).toBe(429)
    // Locked for now, even with the right password: the guesser cannot tell when it found it.
    const locked = await api.post('/v1/sessions', { email, password: 'correct horse battery' })
    expect(locked.status).toBe(429)
    expect(locked.headers.get('retry-after')).toBeTruthy()
    let signup = 0
    for (let i = 0; i < 30 && signup !== 429; i++) signup = (await api.post('/v1/makers', { name: `spam ${i}` })).status
    expect(signup).toBe(429)
  })
})
