import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ApiOptions } from '../../../hub/src/api/app.js'
import type { Registry } from '../../../hub/src/registry/registry.js'
import { loadConfig } from '../../../hub/src/config.js'
import { fakeHubApi as fakeApi, openFakeRegistry, seedTenant, type FakeHubApi } from '../../support/fake-context.js'

// Each test hashes passwords with scrypt and walks many routes: room for a loaded machine.
vi.setConfig({ testTimeout: 30_000 })

let registry: Registry
let api: FakeHubApi
beforeAll(async () => { registry = await openFakeRegistry() }, 60_000)
afterAll(async () => { await registry?.close() })
afterEach(async () => { await api?.close() })
const fakeHubApi = async (opts: ApiOptions = {}) => await fakeApi(opts, registry)
let tenants = 0
const tenant = async () => await seedTenant(api, `Limits${++tenants}`)

const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

describe('JSON nesting depth', () => {
  it('answers a 5,000-deep sample in mapping:test with 400 BODY_TOO_DEEP, not 500', async () => {
    api = await fakeHubApi()
    const t = await tenant()
    const res = await api.inject({
      method: 'POST',
      url: `/v1/models/${t.modelId}/mapping:test`,
      token: t.makerToken,
      headers: { 'content-type': 'application/json' },
      payload: `{"payloads":[{"x":${deep(5000)}}]}`,
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toEqual({ code: 'BODY_TOO_DEEP', message: expect.stringContaining('64') })
  })

  it('takes a body nested up to the limit, and counts no bracket inside a string', async () => {
    api = await fakeHubApi({ maxJsonDepth: 8 })
    const t = await tenant()
    const at = await api.inject({
      method: 'POST',
      url: `/v1/models/${t.modelId}/mapping:test`,
      token: t.makerToken,
      headers: { 'content-type': 'application/json' },
      payload: `{"payloads":[{"readings":{"temperature":1},"x":${deep(5)},"note":"[[[[[[[[[[\\"]]"}]}`,
    })
    expect(at.statusCode).toBe(200)
    const charset = await api.inject({ method: 'POST', url: '/v1/makers', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: `{"name":${JSON.stringify('x')},"deep":${deep(9)}}` })
    expect(charset.json().error.code).toBe('BODY_TOO_DEEP')
    const proto = await api.inject({ method: 'POST', url: '/v1/makers', headers: { 'content-type': 'application/json' }, payload: '{"name":"p","__proto__":{"admin":true}}' })
    expect(proto.statusCode).toBe(400)
  })
})

describe('history routes', () => {
  it('say when the answer was cut at the limit, and give the `from` that continues it', async () => {
    api = await fakeHubApi()
    const t = await tenant()
    const base = Date.parse('2026-01-01T00:00:00Z')
    api.store.points = Array.from({ length: 5 }, (_, i) => ({ ts: new Date(base + i * 1000).toISOString(), value: i }))
    const url = (from: string) => `/v1/devices/${t.devices[0].id}/telemetry?capability=temperature&from=${from}&to=2026-01-01T01:00:00Z&limit=2`
    const seen: number[] = []
    let from: string | null = '2026-01-01T00:00:00Z'
    let pages = 0
    while (from && pages++ < 10) {
      const page: { points: Array<{ value: number }>, truncated: boolean, next: string | null } = (await api.inject({ method: 'GET', url: url(from), token: t.ownerToken })).json()
      seen.push(...page.points.map((p) => p.value))
      expect(page.truncated).toBe(page.next !== null)
      from = page.next
    }
    expect(seen).toEqual([0, 1, 2, 3, 4])
    expect(pages).toBe(3)
  })

  it('limit history queries per token', async () => {
    api = await fakeHubApi({ rateLimits: { history: { perSecond: 0.001, burst: 3 } } })
    const t = await tenant()
    const url = `/v1/devices/${t.devices[0].id}/telemetry?capability=temperature`
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await api.inject({ method: 'GET', url, token: t.ownerToken })).statusCode)
    expect(statuses).toEqual([200, 200, 200, 429])
    const presence = await api.inject({ method: 'GET', url: `/v1/devices/${t.devices[0].id}/presence`, token: t.ownerToken })
    expect(presence.statusCode).toBe(429)
    expect(presence.json().error.code).toBe('RATE_LIMITED')
    // Another token of the same owner has its own budget.
    const other = (await api.inject({ method: 'POST', url: '/v1/sessions', payload: { email: t.email, password: 'correct horse battery' } })).json().token
    expect((await api.inject({ method: 'GET', url, token: other })).statusCode).toBe(200)
  })
})

describe('models', () => {
  it("show the hub's heartbeat allowance (600 s) when the model declares none", async () => {
    api = await fakeHubApi()
    const t = await tenant()
    const model = await api.inject({ method: 'GET', url: `/v1/models/${t.modelId}`, token: t.makerToken })
    expect(model.json().heartbeatSeconds).toBe(600)
  })
})

describe('behind a proxy', () => {
  it('counts failed logins by the forwarded address when the proxy is trusted', async () => {
    api = await fakeHubApi({ trustProxy: '127.0.0.1', rateLimits: { failedLoginPerAddress: { perSecond: 0.001, burst: 2 } } })
    const guess = (forwarded: string) => api.inject({ method: 'POST', url: '/v1/sessions', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': forwarded }, payload: { email: `x${Math.random()}@example.com`, password: 'wrong guess' } })
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await guess('203.0.113.1')).statusCode)
    expect(statuses).toEqual([401, 401, 429])
    expect((await guess('203.0.113.2')).statusCode).toBe(401)
  })

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    api = await fakeHubApi({ rateLimits: { failedLoginPerAddress: { perSecond: 0.001, burst: 2 } } })
    const guess = (forwarded: string) => api.inject({ method: 'POST', url: '/v1/sessions', remoteAddress: '192.0.2.9', headers: { 'x-forwarded-for': forwarded }, payload: { email: `x${Math.random()}@example.com`, password: 'wrong guess' } })
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await guess(`203.0.113.${i + 10}`)).statusCode)
    expect(statuses).toEqual([401, 401, 429])
  })

  it('reads TRUST_PROXY, CORS_ORIGINS and HTTP_MAX_CONNECTIONS from the environment, each with its default', () => {
    const none = loadConfig({})
    expect([none.TRUST_PROXY, none.CORS_ORIGINS, none.HTTP_MAX_CONNECTIONS]).toEqual([false, [], 4096])
    const set = loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1', CORS_ORIGINS: 'https://a.example.com,https://b.example.com', HTTP_MAX_CONNECTIONS: '100' })
    expect([set.TRUST_PROXY, set.CORS_ORIGINS, set.HTTP_MAX_CONNECTIONS]).toEqual([['10.0.0.0/8', '127.0.0.1'], ['https://a.example.com', 'https://b.example.com'], 100])
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true)
  })

  it('answers CORS only for the allowed origins, preflight included', async () => {
    api = await fakeHubApi({ corsOrigins: ['https://console.example.com'] })
    const allowed = await api.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://console.example.com' } })
    expect(allowed.headers['access-control-allow-origin']).toBe('https://console.example.com')
    const other = await api.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example.net' } })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
    const preflight = await api.inject({ method: 'OPTIONS', url: '/v1/devices', headers: { origin: 'https://console.example.com', 'access-control-request-method': 'GET' } })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-headers']).toContain('authorization')
  })
})

describe('/docs', () => {
  it('serves Swagger UI to a browser, and the JSON with an operationId on every route at /docs/json', async () => {
    api = await fakeHubApi()
    const page = await api.inject({ method: 'GET', url: '/docs', headers: { accept: 'text/html,application/xhtml+xml' } })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toContain('text/html')
    // Swagger UI from this origin, started by a script file (test/hub/api/docs-ui.int.test.ts loads it in chromium).
    expect(page.body).toContain('<script src="/docs/assets/swagger-ui-bundle.js')
    expect(page.body).not.toMatch(/<script>|https?:\/\//)
    const doc = (await api.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { operationId?: string }>> }
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId))
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
    expect((await api.inject({ method: 'GET', url: '/docs' })).json()).toEqual(doc)
  })
})
