import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import type { SqlClient } from '../../hub/src/registry/sql.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { apiClient, seedFleet, type ApiClient, type ApiResponse } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Issue #17, findings 3 to 5 (maker part): what a hostile maker or its devices can make the hub keep.
let influx: TestInflux
let stack: TestStack
let api: ApiClient
const devices: Device[] = []
/** Statements the hub has sent to its registry database. */
let statements = 0
let db: SqlClient
let database: TestDatabase

/** The real database, counting what it is asked. */
function counting (db: SqlClient): SqlClient {
  return {
    ...db,
    async query (text, params) { statements++; return await db.query(text, params) },
    async transaction (fn) { return await db.transaction(async (tx) => await fn({ async query (text, params) { statements++; return await tx.query(text, params) } })) },
  }
}

beforeAll(async () => {
  influx = await startTestInflux()
  // Small quotas, so that reaching each costs a few requests.
  stack = await startStack({ influxUrl: influx.url, sql: counting(db = (database = await freshDatabase()).open()), makerQuotas: { modelsPerMaker: 3, devicesPerMaker: 6, provisionBatch: 4, mappingBytes: 4096, mappingRules: 20 } })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await database?.drop()
  await influx?.dispose()
})

describe('rejections a maker reads', () => {
  it('name the first unknown keys and count the rest, next to the other problems', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret })
    devices.push(device)
    const readings: Record<string, number> = { temperature: 412 }
    for (let i = 0; i < 1700; i++) readings[`x${i}`] = 1
    await device.publishRaw(JSON.stringify({ readings }))

    const res = await eventually(() => api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken), (r) => r.body.rejections?.length === 1, { what: 'the rejection' })
    const [rejection] = res.body.rejections
    expect(rejection.reason).toBe('temperature 412 is out of range -50..150 for model thermo-1; model thermo-1 has no capability x0, x1, x2, x3, x4 … and 1695 more')
    expect(rejection.payload.length).toBeLessThanOrEqual(512)
    expect(rejection.bytes).toBeGreaterThan(12_000)
  })
})

describe('per-maker quotas', () => {
  const thermo = (name: string, mapping?: unknown) => ({ name, capabilities: ['temperature', 'power'], ...(mapping !== undefined && { mapping }) })
  const signUp = async () => (await api.post('/v1/makers', { name: 'Quota Test' })).body.token as string

  it('refuses a model over the maker\'s model quota with 422 and the limit', async () => {
    const token = await signUp()
    for (let i = 0; i < 3; i++) expect((await api.post('/v1/models', thermo(`m${i}`), token)).status).toBe(201)
    const over = await api.post('/v1/models', thermo('m3'), token)
    expect(over.status).toBe(422)
    expect(over.body.error).toEqual({ code: 'QUOTA_EXCEEDED', message: 'you have 3 models, the limit per maker; reuse or delete one' })
    // Another maker is not held back by this one's models.
    expect((await api.post('/v1/models', thermo('m0'), await signUp())).status).toBe(201)
  })

  it('refuses a provisioning batch over the cap, and devices over the maker\'s device quota', async () => {
    const token = await signUp()
    const model = (await api.post('/v1/models', thermo('t'), token)).body.id
    const big = await api.post('/v1/devices', { model, count: 5 }, token)
    expect(big.status).toBe(422)
    expect(big.body.error).toEqual({ code: 'QUOTA_EXCEEDED', message: 'a provisioning request makes at most 4 devices; send several' })
    expect((await api.post('/v1/devices', { model, count: 4 }, token)).status).toBe(201)
    const over = await api.post('/v1/devices', { model, count: 3 }, token)
    expect(over.status).toBe(422)
    expect(over.body.error).toEqual({ code: 'QUOTA_EXCEEDED', message: 'you have 4 devices and the limit per maker is 6; provision at most 2 more' })
    expect((await api.post('/v1/devices', { model, count: 2 }, token)).status).toBe(201)
  })

  it('refuses a mapping over the size or rule quota, naming the limit, on declaration and on replacement', async () => {
    const token = await signUp()
    const rules = Array.from({ length: 21 }, (_, i) => ({ path: `t${i}`, capability: 'temperature' }))
    const many = await api.post('/v1/models', thermo('many', { format: 'json', readings: rules }), token)
    expect(many.status).toBe(422)
    expect(many.body.error).toEqual({ code: 'INVALID_MAPPING', message: 'the mapping is not valid for this model: it has 21 rules, fields and actions; the limit is 20' })
    const model = (await api.post('/v1/models', thermo('ok', { format: 'json', readings: [{ path: 't', capability: 'temperature' }] }), token)).body.id
    const huge = await api.put(`/v1/models/${model}/mapping`, { format: 'json', readings: [{ path: 't', capability: 'temperature', map: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`device-value-${i}`, i])) }] }, token)
    expect(huge.status).toBe(422)
    expect(huge.body.error.message).toMatch(/^the mapping is not valid for this model: it is \d+ bytes of JSON; the limit is 4096$/)
  })
})

describe('listing', () => {
  /** Walks every page, returning the statements each cost and the devices it held. */
  async function walkPages (path: string, key: 'devices' | 'models', token: string, limit: number) {
    const pages: Array<{ statements: number, items: number }> = []
    let after: string | null = null
    do {
      const before = statements
      const res: ApiResponse = await api.get(`${path}?limit=${limit}${after ? `&after=${after}` : ''}`, token)
      expect(res.status).toBe(200)
      pages.push({ statements: statements - before, items: res.body[key].length })
      after = res.body.next
    } while (after !== null && pages.length < 100)
    return pages
  }

  it('costs a few SQL statements per page of a fleet, however many devices are not yet loaded', async () => {
    const fleet = await seedFleet(api)
    const second = (await api.post('/v1/models', { name: 'second', capabilities: ['power'] }, fleet.makerToken)).body.id
    // 300 more devices over two models, written as a fleet provisioned long ago: none is in the hub's cache.
    await db.query(
      `INSERT INTO devices (id, model_id, maker_id, secret_hash, owner_id)
       SELECT 'dev-bulk-' || lpad(i::text, 4, '0'), CASE WHEN i % 2 = 0 THEN $1 ELSE $2 END, $3, md5(i::text), $4 FROM generate_series(1, 300) AS i`,
      [fleet.modelId, second, fleet.makerId, fleet.ownerId])
    for (const token of [fleet.makerToken, fleet.ownerToken]) {
      const pages = await walkPages('/v1/devices', 'devices', token, 100)
      expect(pages.map((p) => p.items)).toEqual([100, 100, 100, 1])
      // One for the page, one for models not yet compiled; the margin is for the hub's own background writes.
      for (const page of pages) expect(page.statements).toBeLessThanOrEqual(4)
    }
  })

  it('gives a maker its models a page at a time, in the order declared', async () => {
    const token = (await api.post('/v1/makers', { name: 'Pages' })).body.token
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await api.post('/v1/models', { name: `p${i}`, capabilities: ['power'] }, token)).body.id)
    const first = await api.get('/v1/models?limit=2', token)
    expect(first.body.models.map((m: { id: string }) => m.id)).toEqual(ids.slice(0, 2))
    const rest = await api.get(`/v1/models?limit=2&after=${first.body.next}`, token)
    expect(rest.body).toMatchObject({ next: null })
    expect(rest.body.models.map((m: { id: string }) => m.id)).toEqual(ids.slice(2))
    expect((await api.get('/v1/models?limit=201', token)).status).toBe(400)
  })
})

describe('deeply nested bodies', () => {
  it('answers a sample nested 5,000 deep with 400 and the limit, not 500', async () => {
    const fleet = await seedFleet(api)
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)
    const res = await api.call('POST', `/v1/models/${fleet.modelId}/mapping:test`, { token: fleet.makerToken, raw: `{"payloads":[${deep}]}` })
    expect(res.status).toBe(400)
    expect(res.body.error.code).toBe('BODY_TOO_DEEP')
    expect(res.body.error.message).toContain('deeper than 64 levels')
  })

  it('answers a mapping nested deeper than a mapping may with 422 and the limit, not 500', async () => {
    const fleet = await seedFleet(api)
    // Within what any JSON body may nest (64), beyond what a mapping may (16).
    const deep = '{"a":'.repeat(40) + '1' + '}'.repeat(40)
    const res = await api.call('PUT', `/v1/models/${fleet.modelId}/mapping`, { token: fleet.makerToken, raw: deep })
    expect(res.status).toBe(422)
    expect(res.body.error.message).toBe('the mapping is not valid for this model: it nests deeper than 16 levels')
  })
})
