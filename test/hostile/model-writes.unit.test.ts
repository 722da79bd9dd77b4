import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { Registry } from '../../hub/src/registry/registry.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { fakeHubApi, openFakeRegistry, type FakeHubApi } from '../support/fake-context.js'

// Issue #17, finding 5: one maker flooding model and mapping writes (each a mapping of up to 64 KiB that the hub
// validates on its thread) and paging its models; each is bounded per maker.
vi.setConfig({ testTimeout: 30_000 })

let api: FakeHubApi
const registries: Registry[] = []
const databases: TestDatabase[] = []
afterEach(async () => { await api?.close() })
afterAll(async () => {
  for (const r of registries) await r.close()
  for (const d of databases) await d.drop()
})

async function registry (opts: Parameters<typeof Registry.open>[1] = {}): Promise<Registry> {
  let r: Registry
  if (Object.keys(opts).length === 0) r = await openFakeRegistry()
  else {
    const db = await freshDatabase()
    databases.push(db)
    r = await Registry.open(db.open(), opts)
  }
  registries.push(r)
  return r
}

let makers = 0
async function newMaker (): Promise<string> {
  const res = await api.inject({ method: 'POST', url: '/v1/makers', payload: { name: `Writer ${++makers}` } })
  expect(res.statusCode).toBe(201)
  return res.json().token
}

const mapping = (keys: number) => ({ format: 'json', readings: [{ path: 'p', capability: 'power', map: Object.fromEntries(Array.from({ length: keys }, (_, i) => [`value-${i}`.padEnd(40, 'x'), i % 2 === 0])) }] })
const declare = (token: string, name: string, m: unknown = mapping(2)) => api.inject({ method: 'POST', url: '/v1/models', token, payload: { name, capabilities: ['power'], ...(m !== null && { mapping: m }) } })

describe('model and mapping writes', () => {
  it('answer 429 RATE_LIMITED with Retry-After and a reason once a maker has spent its writes, before the mapping is validated; reads and other makers are unaffected', async () => {
    api = await fakeHubApi({ rateLimits: { modelWrite: { perSecond: 0.001, burst: 3 } } }, await registry())
    const flooder = await newMaker()
    const model = (await declare(flooder, 'first')).json().id
    expect((await api.inject({ method: 'PUT', url: `/v1/models/${model}/mapping`, token: flooder, payload: mapping(3) })).statusCode).toBe(200)
    // A dry run of a candidate mapping validates and compiles it: it counts as a write.
    expect((await api.inject({ method: 'POST', url: `/v1/models/${model}/mapping:test`, token: flooder, payload: { mapping: mapping(4), payloads: [{ p: 'value-0' }] } })).statusCode).toBe(200)

    const refused = await declare(flooder, 'second')
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['retry-after']).toBe('1000')
    expect(refused.json().error).toEqual({ code: 'RATE_LIMITED', message: 'too many model and mapping writes from this maker; try again in 1000 s' })
    // Refused before validation: an invalid mapping is not even looked at.
    const invalid = await api.inject({ method: 'PUT', url: `/v1/models/${model}/mapping`, token: flooder, payload: { format: 'nonsense' } })
    expect(invalid.statusCode).toBe(429)
    expect((await api.inject({ method: 'POST', url: `/v1/models/${model}/mapping:test`, token: flooder, payload: { mapping: mapping(1), payloads: ['x'] } })).statusCode).toBe(429)

    // Reading, and dry runs of the stored mapping, cost no write.
    expect((await api.inject({ method: 'GET', url: `/v1/models/${model}`, token: flooder })).statusCode).toBe(200)
    expect((await api.inject({ method: 'GET', url: '/v1/models', token: flooder })).statusCode).toBe(200)
    expect((await api.inject({ method: 'POST', url: `/v1/models/${model}/mapping:test`, token: flooder, payload: { payloads: [{ p: 'value-0' }] } })).statusCode).toBe(200)
    // Another maker has a budget of its own.
    expect((await declare(await newMaker(), 'other')).statusCode).toBe(201)
  })

  it('allows 2 writes a second after a burst of 20 by default', async () => {
    api = await fakeHubApi({}, await registry())
    const maker = await newMaker()
    const started = Date.now()
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) statuses.push((await declare(maker, `m${i}`)).statusCode)
    // The burst, and what refilled at 2/s while the loop ran (a loaded machine makes it slower).
    const refilled = Math.ceil(2 * (Date.now() - started) / 1000)
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(201))
    expect(statuses.filter((s) => s === 201).length).toBeLessThanOrEqual(20 + refilled)
    // Unless the machine was so slow that the bucket refilled as fast as the loop asked, some were refused.
    if (20 + refilled < statuses.length) expect(statuses).toContain(429)
  })
})

describe('a page of GET /v1/models', () => {
  it('holds mappings of at most the page budget together, and `next` leads through every model in order', async () => {
    api = await fakeHubApi({ rateLimits: { modelWrite: { perSecond: 1000, burst: 1000 } } }, await registry({ makerQuotas: { modelPageBytes: 4000 } }))
    const maker = await newMaker()
    const ids: string[] = []
    // About 1,450 bytes of JSON each, so a few fit a page; one model has no mapping (null: none).
    for (let i = 0; i < 7; i++) ids.push((await declare(maker, `m${i}`, i === 3 ? null : mapping(28))).json().id)
    const pages: string[][] = []
    let after: string | null = null
    do {
      const res = await api.inject({ method: 'GET', url: `/v1/models?limit=200${after ? `&after=${after}` : ''}`, token: maker })
      expect(res.statusCode).toBe(200)
      const { models, next } = res.json() as { models: Array<{ id: string, mapping: unknown }>, next: string | null }
      const bytes = models.reduce((sum, m) => sum + (m.mapping == null ? 0 : JSON.stringify(m.mapping).length), 0)
      expect(bytes, `page ${pages.length + 1}`).toBeLessThanOrEqual(4000)
      pages.push(models.map((m) => m.id))
      after = next
    } while (after !== null && pages.length < 10)
    expect(pages.flat()).toEqual(ids)
    expect(pages.length).toBeGreaterThan(1)
    expect(pages.every((p) => p.length >= 1 && p.length <= 4)).toBe(true)
  })

  it('holds at least one model, however large its mapping', async () => {
    api = await fakeHubApi({}, await registry({ makerQuotas: { modelPageBytes: 100 } }))
    const maker = await newMaker()
    const ids = [(await declare(maker, 'big', mapping(28))).json().id, (await declare(maker, 'big2', mapping(28))).json().id]
    const first = (await api.inject({ method: 'GET', url: '/v1/models', token: maker })).json()
    expect(first.models.map((m: { id: string }) => m.id)).toEqual([ids[0]])
    expect(first.next).toBe(ids[0])
    const second = (await api.inject({ method: 'GET', url: `/v1/models?after=${first.next}`, token: maker })).json()
    expect(second.models.map((m: { id: string }) => m.id)).toEqual([ids[1]])
    expect(second.next).toBeNull()
  })
})
