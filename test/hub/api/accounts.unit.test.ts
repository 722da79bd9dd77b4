import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ApiOptions } from '../../../hub/src/api/app.js'
import type { Registry } from '../../../hub/src/registry/registry.js'
import { fakeHubApi as fakeApi, openFakeRegistry, seedTenant, type FakeHubApi } from '../../support/fake-context.js'

// Each test hashes passwords with scrypt and walks many routes: room for a loaded machine.
vi.setConfig({ testTimeout: 30_000 })

let registry: Registry
let api: FakeHubApi
beforeAll(async () => { registry = await openFakeRegistry() }, 60_000)
afterAll(async () => { await registry?.close() })
afterEach(async () => { await api?.close() })
const fakeHubApi = async (opts: ApiOptions = {}) => await fakeApi(opts, registry)

const login = (email: string, password: string, remoteAddress: string) =>
  api.inject({ method: 'POST', url: '/v1/sessions', payload: { email, password }, remoteAddress })

describe('login throttling', () => {
  it('lets the owner in from a clean address after a stranger spent the failures on their email', async () => {
    api = await fakeHubApi({ rateLimits: { failedLogin: { perSecond: 0.001, burst: 10 } } })
    const { email } = await seedTenant(api, 'Lockout')
    let last = 0
    for (let i = 0; i < 12; i++) last = (await login(email, `wrong guess ${i}`, '203.0.113.7')).statusCode
    expect(last).toBe(429)
    const owner = await login(email, 'correct horse battery', '198.51.100.20')
    expect(owner.statusCode).toBe(200)
    expect(owner.json().token).toMatch(/^trellis_owner_/)
  })

  it('stops one address guessing across many accounts', async () => {
    api = await fakeHubApi({ rateLimits: { failedLoginPerAddress: { perSecond: 0.001, burst: 5 } } })
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) statuses.push((await login(`someone-${i}@example.com`, 'wrong guess', '203.0.113.8')).statusCode)
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429])
    expect((await login('someone-9@example.com', 'wrong guess', '203.0.113.9')).statusCode).toBe(401)
  })
})

describe('sign-up caps', () => {
  it('refuses sign-ups past the hub-wide cap, whatever the address', async () => {
    api = await fakeHubApi({ rateLimits: { signupTotal: { perSecond: 0.001, burst: 3 } } })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await api.inject({ method: 'POST', url: '/v1/makers', payload: { name: `m${i}` }, remoteAddress: `192.0.2.${i + 1}` })).statusCode)
    expect(statuses).toEqual([201, 201, 201, 429, 429])
    const refused = await api.inject({ method: 'POST', url: '/v1/owners', payload: { email: 'late@example.com', password: 'correct horse battery' }, remoteAddress: '192.0.2.99' })
    expect(refused.statusCode).toBe(429)
    expect(refused.json().error.code).toBe('RATE_LIMITED')
    expect(refused.headers['retry-after']).toBeTruthy()
  })
})

describe('session tokens', () => {
  it('says when a token expires, and an expired one is refused', async () => {
    api = await fakeHubApi({ tokens: { ownerTtlSeconds: 1 }, tokenCacheSeconds: 0 })
    const signup = await api.inject({ method: 'POST', url: '/v1/owners', payload: { email: 'brief@example.com', password: 'correct horse battery' } })
    const { token, expiresAt } = signup.json()
    const lifetime = Date.parse(expiresAt) - Date.now()
    expect(lifetime).toBeGreaterThan(0)
    expect(lifetime).toBeLessThanOrEqual(1000)
    expect((await api.inject({ method: 'GET', url: '/v1/tokens', token })).statusCode).toBe(200)
    // Wait for the expiry itself, not a guess at it.
    const deadline = Date.now() + 10_000
    let status = 200
    while (status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, Date.parse(expiresAt) - Date.now() + 10)))
      status = (await api.inject({ method: 'GET', url: '/v1/tokens', token })).statusCode
    }
    expect(status).toBe(401)
  })

  it('lasts 30 days by default for an owner', async () => {
    api = await fakeHubApi()
    const { expiresAt } = (await api.inject({ method: 'POST', url: '/v1/owners', payload: { email: 'month@example.com', password: 'correct horse battery' } })).json()
    expect(Math.round((Date.parse(expiresAt) - Date.now()) / 86_400_000)).toBe(30)
  })

  it('rotates: refresh gives a new token and the old one stops working at once', async () => {
    api = await fakeHubApi()
    const t = await seedTenant(api, 'Rotation')
    for (const token of [t.ownerToken, t.makerToken]) {
      const refreshed = await api.inject({ method: 'POST', url: '/v1/sessions:refresh', token })
      expect(refreshed.statusCode).toBe(200)
      const fresh = refreshed.json().token
      expect(fresh).not.toBe(token)
      expect((await api.inject({ method: 'GET', url: '/v1/tokens', token })).statusCode).toBe(401)
      expect((await api.inject({ method: 'GET', url: '/v1/tokens', token: fresh })).statusCode).toBe(200)
    }
  })

  it('keeps at most the cap of live tokens per account, revoking the oldest', async () => {
    api = await fakeHubApi({ tokens: { maxLivePerAccount: 3 } })
    const t = await seedTenant(api, 'Capped')
    const tokens = [t.ownerToken]
    for (let i = 0; i < 4; i++) tokens.push((await login(t.email, 'correct horse battery', '192.0.2.50')).json().token)
    const live = []
    for (const token of tokens) live.push((await api.inject({ method: 'GET', url: '/v1/tokens', token })).statusCode)
    expect(live).toEqual([401, 401, 200, 200, 200])
    const listed = (await api.inject({ method: 'GET', url: '/v1/tokens', token: tokens[4] })).json().tokens
    expect(listed.filter((x: { revokedAt: string | null }) => x.revokedAt === null)).toHaveLength(3)
  })
})
