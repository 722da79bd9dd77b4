import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Registry } from '../../hub/src/registry/registry.js'
import { fakeHubApi, openFakeRegistry, seedTenant, type FakeHubApi } from '../support/fake-context.js'

// Issue #17, finding 5: many accounts sending requests back to back; each account's requests are bounded.
vi.setConfig({ testTimeout: 30_000 })

let registry: Registry
let api: FakeHubApi
beforeAll(async () => { registry = await openFakeRegistry() }, 60_000)
afterAll(async () => { await registry?.close() })
afterEach(async () => { await api?.close() })

let owners = 0
/** A new owner, signed up (a public route): none of its budget spent yet. */
async function newOwner (): Promise<{ email: string, token: string }> {
  const email = `limit-${++owners}@example.com`
  const res = await api.inject({ method: 'POST', url: '/v1/owners', payload: { email, password: 'correct horse battery' } })
  expect(res.statusCode).toBe(201)
  return { email, token: res.json().token }
}

describe('the per-account request limit', () => {
  it('answers 429 RATE_LIMITED with Retry-After once an account has spent its burst, before the handler runs, and leaves other accounts alone', async () => {
    api = await fakeHubApi({ rateLimits: { request: { perSecond: 0.001, burst: 5 } } }, registry)
    const a = await seedTenant(api, 'Flooder')
    const flooder = await newOwner()
    const statuses: number[] = []
    for (let i = 0; i < 8; i++) statuses.push((await api.inject({ method: 'GET', url: '/v1/devices', token: flooder.token })).statusCode)
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
    const refused = await api.inject({ method: 'POST', url: '/v1/schedules', token: flooder.token, payload: { not: 'even valid' } })
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['retry-after']).toBe('1000')
    expect(refused.json().error).toEqual({ code: 'RATE_LIMITED', message: 'too many requests from this account; try again in 1000 s' })
    // Other accounts, owners and makers, have budgets of their own.
    expect((await api.inject({ method: 'GET', url: '/v1/devices', token: a.makerToken })).statusCode).toBe(200)
    expect((await api.inject({ method: 'GET', url: '/v1/devices', token: (await newOwner()).token })).statusCode).toBe(200)
  })

  it('counts every token of one account together', async () => {
    api = await fakeHubApi({ rateLimits: { request: { perSecond: 0.001, burst: 4 } } }, registry)
    const a = await newOwner()
    const second = await api.inject({ method: 'POST', url: '/v1/sessions', payload: { email: a.email, password: 'correct horse battery' } })
    expect(second.statusCode).toBe(200)
    const tokens = [a.token, second.json().token as string]
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await api.inject({ method: 'GET', url: '/v1/devices', token: tokens[i % 2] })).statusCode)
    expect(statuses.filter((s) => s === 429)).toHaveLength(2)
  })

  it('allows 50 requests a second after a burst of 200 by default', async () => {
    api = await fakeHubApi({}, registry)
    const a = await newOwner()
    const started = Date.now()
    const statuses: number[] = []
    for (let i = 0; i < 300; i++) statuses.push((await api.inject({ method: 'GET', url: '/v1/devices', token: a.token })).statusCode)
    // The burst, and what refilled at 50/s while the loop ran (a loaded machine makes it slower).
    const refilled = Math.ceil(50 * (Date.now() - started) / 1000)
    const allowed = statuses.filter((s) => s === 200).length
    expect(allowed).toBeGreaterThanOrEqual(200)
    expect(allowed).toBeLessThanOrEqual(200 + refilled)
    // Unless the loop was so slow (over 2 s for 300 requests, as seen on a loaded machine) that the bucket kept up, some were refused.
    if (200 + refilled < statuses.length) expect(statuses).toContain(429)
  })
})
