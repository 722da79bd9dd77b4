import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { startTestInflux, type TestInflux } from '../../support/influx.js'
import { startStack, type TestStack } from '../../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../../support/api.js'

// Walks every route in /docs with a request that should succeed, one without a token and one naming
// something that does not exist, and checks each real answer against what /docs says of its status.

const ADMIN_TOKEN = 'trellis_admin_conformance-admin-token-0123456789abcdef'

let influx: TestInflux
let stack: TestStack
let api: ApiClient

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url, api: { adminToken: ADMIN_TOKEN } })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await stack?.close()
  await influx?.dispose()
})

interface Operation {
  operationId?: string
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  responses: Record<string, { content?: Record<string, { schema: object }> }>
}
type Doc = { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, object> } }

interface Sample { token?: string, path?: string, query?: string, body?: unknown, stream?: boolean }

interface Answer { status: number, contentType: string, body: unknown }

async function send (method: string, url: string, sample: Sample): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (sample.token) headers.authorization = `Bearer ${sample.token}`
  if (sample.body !== undefined) headers['content-type'] = 'application/json'
  const controller = new AbortController()
  const res = await fetch(stack.httpUrl + url, { method, headers, body: sample.body === undefined ? undefined : JSON.stringify(sample.body), signal: controller.signal })
  const contentType = (res.headers.get('content-type') ?? '').split(';')[0]
  if (contentType === 'text/event-stream') {
    controller.abort()
    return { status: res.status, contentType, body: null }
  }
  const text = await res.text()
  return { status: res.status, contentType, body: contentType === 'application/json' && text ? JSON.parse(text) : text }
}

/** `devices[].state.*` style paths of every property a JSON schema declares (objects and arrays of objects). */
function declaredPaths (schema: any, prefix = ''): string[] {
  if (!schema || typeof schema !== 'object') return []
  if (schema.anyOf || schema.oneOf) return (schema.anyOf ?? schema.oneOf).flatMap((s: any) => declaredPaths(s, prefix))
  if (schema.type === 'array') return declaredPaths(schema.items, `${prefix}[]`)
  if (schema.type !== 'object' || !schema.properties) return []
  return Object.entries(schema.properties).flatMap(([k, s]) => [`${prefix}.${k}`, ...declaredPaths(s, `${prefix}.${k}`)])
}

function seenPaths (value: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) {
      out.add(`${prefix}[]`)
      seenPaths(v, `${prefix}[]`, out)
    }
  }
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(`${prefix}.${k}`)
      seenPaths(v, `${prefix}.${k}`, out)
    }
  }
  return out
}

describe('the OpenAPI document', () => {
  it('matches what every route really answers, success and errors alike', async () => {
    const a = await seedFleet(api, { makerName: 'Conformance Appliances', count: 3 })
    const model2 = await api.post('/v1/models', { name: 'mapped-1', capabilities: ['temperature'], mapping: { format: 'json', readings: [{ path: 't', capability: 'temperature' }] } }, a.makerToken)
    const spareToken = (await api.post('/v1/sessions', { email: 'nobody@example.com', password: 'x' })).status
    expect(spareToken).toBe(401)
    const login = await api.post('/v1/owners', { email: `spare-${Date.now()}@example.com`, password: 'correct horse battery' })
    const schedule = await api.post('/v1/schedules', { deviceId: a.devices[0].id, cron: '0 3 * * *', command: { set: { power: false } } }, a.ownerToken)
    const rule = (deviceId: string) => ({
      name: 'too warm',
      trigger: { type: 'reading', deviceId, capability: 'temperature', op: 'above', value: 30, forSeconds: 60 },
      conditions: [{ type: 'state', deviceId, capability: 'power', op: 'equals', value: true }, { type: 'time', after: '08:00', before: '22:00', days: ['mon'] }],
      actions: [{ deviceId, command: { set: { power: false } }, delaySeconds: 5 }],
    })
    const automation = await api.post('/v1/automations', rule(a.devices[0].id), a.ownerToken)
    const command = await api.call('POST', `/v1/devices/${a.devices[0].id}/commands?queue=true&wait=0`, { token: a.ownerToken, body: { set: { power: true } } })
    expect(command.status).toBe(202)
    const spareSession = (await api.get('/v1/tokens', login.body.token)).body.tokens[0].id as string
    const second = await api.post('/v1/sessions', { email: login.body.email ?? '', password: 'correct horse battery' })
    const unclaimed = (await api.post('/v1/devices', { model: a.modelId, count: 1 }, a.makerToken)).body.devices[0]

    const dev = a.devices[0].id
    const app = await api.post('/v1/apps', { name: 'conformance app' }, a.ownerToken)
    const grant = await api.post('/v1/grants', { grantee: { kind: 'maker', id: a.makerId }, devices: [dev], capabilities: ['temperature'], resolution: 'hourly', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, a.ownerToken)
    expect(grant.status).toBe(201)
    // A read under the grant, so the access log has a record to show.
    await api.get(`/v1/devices/${dev}/telemetry?capability=temperature&every=1h&agg=mean`, a.makerToken)
    const samples: Record<string, Sample> = {
      'GET /healthz': {},
      'GET /metrics': {},
      'GET /docs': {},
      'GET /docs/json': {},
      'POST /v1/makers': { body: { name: 'Walker' } },
      'POST /v1/owners': { body: { email: `walker-${Date.now()}@example.com`, password: 'correct horse battery' } },
      'POST /v1/sessions': { body: { email: login.body.email ?? '', password: 'correct horse battery' } },
      'POST /v1/sessions:refresh': { token: second.body.token },
      'POST /v1/models': { token: a.makerToken, body: { name: 'walked', capabilities: ['temperature'] } },
      'GET /v1/models': { token: a.makerToken },
      'GET /v1/models/{id}': { token: a.makerToken, path: a.modelId },
      'PUT /v1/models/{id}/mapping': { token: a.makerToken, path: model2.body.id, body: { format: 'json', readings: [{ path: 'temp', capability: 'temperature' }] } },
      'DELETE /v1/models/{id}/mapping': { token: a.makerToken, path: model2.body.id },
      'POST /v1/models/{id}/mapping:test': { token: a.makerToken, path: a.modelId, body: { payloads: [{ readings: { temperature: 21.5 } }, 'not json'], commands: [{ set: { power: true } }, { set: { temperature: 1 } }], acks: ['{"id":"c-1","status":"error","error":"busy","state":{"power":true}}', 'not json'] } },
      // ↑ one sample maps, one is refused: both kinds of result are seen.
      'GET /v1/models/{id}/rejections': { token: a.makerToken, path: a.modelId },
      'POST /v1/devices': { token: a.makerToken, body: { model: a.modelId, count: 1 } },
      'POST /v1/devices/claim': { token: a.ownerToken, body: { claimCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ' } },
      'GET /v1/devices': { token: a.makerToken },
      'GET /v1/devices/{id}': { token: a.makerToken, path: dev },
      'PATCH /v1/devices/{id}': { token: a.makerToken, path: unclaimed.id, body: { timeZone: 'Europe/Lisbon' } },
      'GET /v1/devices/{id}/telemetry': { token: a.ownerToken, path: dev, query: 'capability=temperature&every=1m&agg=mean' },
      'GET /v1/devices/{id}/presence': { token: a.ownerToken, path: dev },
      'POST /v1/devices/{id}/secret:rotate': { token: a.makerToken, path: a.devices[2].id },
      'POST /v1/devices/{id}/disable': { token: a.makerToken, path: a.devices[2].id },
      'POST /v1/devices/{id}/enable': { token: a.makerToken, path: a.devices[2].id },
      'POST /v1/devices/{id}/release': { token: a.ownerToken, path: a.devices[1].id },
      'POST /v1/devices/{id}/commands': { token: a.ownerToken, path: dev, query: 'queue=true&wait=0', body: { set: { power: false } } },
      'GET /v1/devices/{id}/commands': { token: a.ownerToken, path: dev },
      'GET /v1/devices/{id}/commands/{cid}': { token: a.ownerToken, path: `${dev}/commands/${command.body.id}` },
      'GET /v1/devices/{id}/capabilities': { token: a.ownerToken, path: dev },
      'POST /v1/console/session': { body: { email: login.body.email ?? '', password: 'correct horse battery' } },
      'GET /v1/console/session': { token: a.ownerToken },
      // With a bearer token it refuses (400): signing out is for the console's cookie.
      'DELETE /v1/console/session': { token: a.ownerToken },
      'GET /v1/tokens': { token: a.ownerToken },
      'DELETE /v1/tokens/{id}': { token: login.body.token, path: spareSession },
      'GET /v1/audit': { token: ADMIN_TOKEN },
      'POST /v1/schedules': { token: a.ownerToken, body: { deviceId: dev, cron: '0 4 * * *', command: { set: { power: true } } } },
      'GET /v1/schedules': { token: a.ownerToken },
      'GET /v1/schedules/{id}': { token: a.ownerToken, path: schedule.body.id },
      'PATCH /v1/schedules/{id}': { token: a.ownerToken, path: schedule.body.id, body: { paused: true } },
      'GET /v1/schedules/{id}/runs': { token: a.ownerToken, path: schedule.body.id },
      'DELETE /v1/schedules/{id}': { token: a.ownerToken, path: schedule.body.id },
      'GET /v1/stream': { token: a.ownerToken, stream: true },
      'POST /v1/automations': { token: a.ownerToken, body: rule(dev) },
      'GET /v1/automations': { token: a.ownerToken },
      'GET /v1/automations/{id}': { token: a.ownerToken, path: automation.body.id },
      'PUT /v1/automations/{id}': { token: a.ownerToken, path: automation.body.id, body: { ...rule(dev), enabled: false } },
      'GET /v1/automations/{id}/runs': { token: a.ownerToken, path: automation.body.id },
      'DELETE /v1/automations/{id}': { token: a.ownerToken, path: automation.body.id },
      'POST /v1/automations:test': { token: a.ownerToken, body: { rule: rule(dev), days: 1 } },
      'POST /v1/apps': { token: a.ownerToken, body: { name: 'walked app' } },
      'GET /v1/apps': { token: a.ownerToken },
      'DELETE /v1/apps/{id}': { token: a.ownerToken, path: app.body.id },
      'POST /v1/grants': { token: a.ownerToken, body: { grantee: { kind: 'app', id: app.body.id }, devices: [dev], capabilities: ['power'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() } },
      'GET /v1/grants': { token: a.makerToken },
      'GET /v1/grants/{id}': { token: a.ownerToken, path: grant.body.id },
      'DELETE /v1/grants/{id}': { token: a.ownerToken, path: grant.body.id },
      'GET /v1/me/access-log': { token: a.ownerToken },
      'GET /v1/models/{id}/insight': { token: a.makerToken, path: a.modelId },
    }
    // The owner's view of a device and list, besides the maker's above.
    const extraCalls: Array<[string, Sample]> = [
      ['GET /v1/devices', { token: a.ownerToken }],
      ['GET /v1/devices/{id}', { token: a.ownerToken, path: dev }],
      ['PATCH /v1/devices/{id}', { token: a.ownerToken, path: dev, body: { timeZone: 'Asia/Tokyo' } }],
      ['POST /v1/devices/claim', { token: a.ownerToken, body: { claimCode: unclaimed.claimCode } }],
    ]

    const json = await api.get('/docs/json')
    expect(json.status, 'the OpenAPI document is served at /docs/json').toBe(200)
    const doc = json.body as Doc
    const ajv = new Ajv2020({ strict: false, allErrors: true })
    ajv.addSchema({ $id: 'doc', components: doc.components } as object)
    const mismatches: string[] = []
    const seen = new Map<string, Set<string>>()
    const declared = new Map<string, string[]>()

    const check = (key: string, op: Operation, answer: Answer) => {
      if (answer.status === 500) mismatches.push(`${key}: answered 500 (an answer that does not fit its schema is one): ${JSON.stringify(answer.body)}`)
      const documented = op.responses[String(answer.status)] ?? op.responses.default
      if (!documented) {
        mismatches.push(`${key}: answered ${answer.status}, which /docs does not list (${Object.keys(op.responses).join(', ')})`)
        return
      }
      if (answer.contentType === 'text/event-stream' || answer.status === 204) return
      const content = documented.content?.[answer.contentType]
      if (!content) {
        mismatches.push(`${key}: answered ${answer.status} as ${answer.contentType}, which /docs does not declare`)
        return
      }
      const schema = JSON.parse(JSON.stringify(content.schema).replaceAll('"#/components/', '"doc#/components/'))
      delete schema.$schema
      const validate = ajv.compile(schema)
      if (!validate(answer.body)) {
        mismatches.push(`${key} ${answer.status}: ${validate.errors!.slice(0, 3).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${String(e.params.additionalProperty)}'` : ''}`).join('; ')}`)
      }
      if (answer.status < 300) {
        const paths = seen.get(key) ?? new Set<string>()
        seenPaths(answer.body, '', paths)
        seen.set(key, paths)
        declared.set(key, declaredPaths(content.schema))
      }
    }

    const operations: Array<[string, string, Operation]> = []
    for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) operations.push([method.toUpperCase(), path, op])
    const order = (k: string) => k.startsWith('DELETE') ? 2 : k.startsWith('POST /v1/devices/claim') ? 1 : 0
    operations.sort((x, y) => order(`${x[0]} ${x[1]}`) - order(`${y[0]} ${y[1]}`))

    const urlOf = (method: string, path: string, sample: Sample) => {
      let url = path
      if (sample.path !== undefined) url = path.includes('{cid}') ? path.replace('{id}/commands/{cid}', sample.path) : path.replace(/\{\w+\}/, sample.path)
      return url + (sample.query ? `?${sample.query}` : '')
    }

    for (const [method, path, op] of operations) {
      const key = `${method} ${path}`
      if (!op.operationId) mismatches.push(`${key}: no operationId`)
      const sample = samples[key]
      if (!sample) {
        mismatches.push(`${key}: the walk has no sample request for it; add one`)
        continue
      }
      check(key, op, await send(method, urlOf(method, path, sample), sample))
      for (const [k, s] of extraCalls.filter(([k]) => k === key)) check(k, op, await send(method, urlOf(method, path, s), s))
      if (op.responses.default) mismatches.push(`${key}: documents a catch-all "default" error instead of its error statuses`)
      // Without a token: 401 for a guarded route.
      if (sample.token) check(key, op, await send(method, urlOf(method, path, { ...sample, token: undefined }), { ...sample, token: undefined }))
      // Something that does not exist: 404 for a route on one thing.
      if (sample.path !== undefined) check(key, op, await send(method, urlOf(method, path, { ...sample, path: path.includes('{cid}') ? `${dev}/commands/cmd-nope` : 'nothing-here' }), sample))
    }
    for (const [key, paths] of declared) {
      // Judged only where the field's parent was seen: an empty list shows nothing of its items.
      const parentSeen = (p: string) => { const parent = p.replace(/\.[^.[\]]+$/, ''); return parent === '' || seen.get(key)!.has(parent) }
      const never = paths.filter((p) => parentSeen(p) && !seen.get(key)!.has(p) && !optionalNotWalked.has(`${key} ${p}`))
      if (never.length) mismatches.push(`${key}: documents ${never.join(', ')}, never seen in a real answer`)
    }
    expect(mismatches).toEqual([])
  })
})

/** Documented fields the walk does not reach: each is returned, but only in a state the walk does not set up. */
const optionalNotWalked = new Set([
  // Only while InfluxDB refuses the hub's credentials (test/hub/store/influx-secured.int.test.ts walks that).
  'GET /healthz .influxProblem',
  // Only in a cluster (test/cluster/redis-outage.int.test.ts walks that); the walk runs one node.
  'GET /healthz .redis',
  // Only the maker's view of a device says whether it is claimed; a claim answers with the owner's.
  'POST /v1/devices/claim .claimed',
  // No telemetry is stored in the walk, so no capability has a spread to show.
  ...['.devices', '.mean', '.p10', '.p50', '.p90'].map((f) => `GET /v1/models/{id}/insight .capabilities[].distribution${f}`),
  // A command sets capabilities or invokes an action, never both; the walk sets.
  ...['POST /v1/schedules', 'GET /v1/schedules/{id}', 'PATCH /v1/schedules/{id}'].flatMap((k) => [`${k} .command.action`, `${k} .command.params`]),
  'GET /v1/schedules .schedules[].command.action',
  'GET /v1/schedules .schedules[].command.params',
  // A trigger and each condition are one of several kinds (test/e2e/automations.int.test.ts walks others); the walk declares a reading trigger with state and time conditions.
  ...['POST /v1/automations', 'GET /v1/automations/{id}', 'PUT /v1/automations/{id}', 'GET /v1/automations .automations[]'].flatMap((k) => {
    const [key, prefix] = k.endsWith('[]') ? [k.split(' .')[0], '.automations[]'] : [k, '']
    return ['.trigger.online', '.trigger.cron', '.trigger.timezone', '.trigger.event', '.trigger.offsetMinutes', '.trigger.location', '.conditions[].is', '.conditions[].location', '.actions[].command.action', '.actions[].command.params']
      .map((f) => `${key} ${prefix}${f}`)
  }),
  // No device is connected in the walk, so no command is acknowledged.
  ...['.action', '.params', '.error', '.state', '.ackedAt'].flatMap((f) => [`POST /v1/devices/{id}/commands ${f}`, `GET /v1/devices/{id}/commands/{cid} ${f}`, `GET /v1/devices/{id}/commands .commands[]${f}`]),
])
