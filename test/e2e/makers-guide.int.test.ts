import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, findConversion, topics, unitConversions, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { compileDeclaration } from '../support/dialects.js'
import { decodeAck, encodeMessages } from '../../hub/src/normalize/commands.js'

/**
 * Runs the examples of docs/makers.md against a real hub, broker and
 * InfluxDB, so the guide cannot drift from what the hub does.
 */
const guide = readFileSync(new URL('../../docs/makers.md', import.meta.url), 'utf8')

interface Block { lang: string, tag: string, text: string }
const blocks: Block[] = [...guide.matchAll(/^```(\w+)([^\n]*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], tag: m[2].trim(), text: m[3] }))
const tagged = (tag: string) => blocks.filter((b) => b.lang === 'json' && b.tag === tag).map((b) => JSON.parse(b.text))

let influx: TestInflux
let stack: TestStack
let api: ApiClient
let device: Device | null = null

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await device?.close().catch(() => {})
  await stack?.close()
  await influx?.dispose()
})

/** True when `actual` has everything `expected` has (arrays item by item, same length). */
function contains (actual: unknown, expected: unknown): boolean {
  try {
    expect(actual).toMatchObject(expected as object)
    return true
  } catch {
    return false
  }
}

describe("the maker's guide", () => {
  it('walks from sign-up to a device reporting in canonical form, as written', async () => {
    // The device's clock: the hub takes live readings only within its window around now.
    const epoch = Math.floor(Date.now() / 1000)
    const vars: Record<string, string> = { EPOCH: String(epoch), TIME: new Date(epoch * 1000).toISOString() }
    const fill = (text: string) => text.replace(/\$([A-Z_]+)/g, (whole, name: string) => vars[name] ?? whole)
    let last: { method: string, path: string, headers: Record<string, string>, body?: string } | null = null
    let answer: Awaited<ReturnType<ApiClient['call']>> | null = null
    const send = async () => {
      const res = await api.call(last!.method, last!.path, { headers: last!.headers, ...(last!.body !== undefined && { raw: last!.body }) })
      expect(res.status, `${last!.method} ${last!.path}: ${JSON.stringify(res.body)}`).toBeLessThan(300)
      return res
    }
    const walkthrough = blocks.slice(0, blocks.findIndex((b) => b.tag === 'example'))
    expect(walkthrough.filter((b) => b.lang === 'http').length).toBeGreaterThanOrEqual(7)

    for (const block of walkthrough) {
      if (block.lang === 'http') {
        const [head, ...rest] = fill(block.text).split(/\n\s*\n/)
        const [requestLine, ...headerLines] = head.trim().split('\n')
        const [method, path] = requestLine.split(' ')
        const headers = Object.fromEntries(headerLines.map((h) => [h.slice(0, h.indexOf(':')).trim().toLowerCase(), h.slice(h.indexOf(':') + 1).trim()]))
        const body = rest.join('\n\n').trim()
        last = { method, path, headers, ...(body && { body }) }
        const res = answer = await send()
        if (method === 'POST' && path === '/v1/makers') vars.MAKER_TOKEN = res.body.token
        if (method === 'POST' && path === '/v1/models') vars.MODEL_ID = res.body.id
        if (method === 'POST' && path === '/v1/devices') Object.assign(vars, { DEVICE_ID: res.body.devices[0].id, DEVICE_SECRET: res.body.devices[0].secret, CLAIM_CODE: res.body.devices[0].claimCode })
        if (method === 'POST' && path === '/v1/owners') vars.OWNER_TOKEN = res.body.token
      } else if (block.lang === 'json' && block.tag === 'response') {
        const expected = JSON.parse(fill(block.text))
        // Reads of state and rejections follow MQTT traffic: poll them; what a write answered is final.
        const res = last!.method === 'GET'
          ? await eventually(send, (r) => contains(r.body, expected), { what: `${last!.method} ${last!.path} to answer as the guide shows` })
          : answer!
        expect(res.body).toMatchObject(expected)
      } else if (block.lang === 'mqtt') {
        const [publish, ...payload] = fill(block.text).trim().split('\n')
        const topic = publish.replace(/^PUBLISH\s+/, '')
        expect(topic).toBe(topics.telemetry(vars.DEVICE_ID))
        device ??= await connectDevice({ url: stack.mqttUrl, deviceId: vars.DEVICE_ID, secret: vars.DEVICE_SECRET, rawCommands: true })
        await device.client.publishAsync(topic, payload.join('\n'), { qos: 1 })
      }
    }
  })

  it.each(tagged('example').map((e, i) => [i, e] as const))('reference example %i gives the readings it shows', async (i, example) => {
    const maker = await api.post('/v1/makers', { name: `Guide example ${i}` })
    const model = await api.post('/v1/models', { name: `example-${i}`, capabilities: example.capabilities, mapping: example.mapping }, maker.body.token)
    expect(model.status, JSON.stringify(model.body)).toBe(201)
    const dry = await api.post(`/v1/models/${model.body.id}/mapping:test`, { payloads: [example.payload] }, maker.body.token)
    expect(dry.status).toBe(200)
    const [result] = dry.body.results
    expect(result).toMatchObject({ ok: true, problems: [] })
    expect(result.readings).toEqual(example.readings)
    if (example.ts) expect(result.ts).toBe(example.ts)
  })

  it.each(tagged('command').map((e, i) => [i, e] as const))('command example %i sends and reads what it shows', (_i, example) => {
    const model = compileDeclaration({ name: 'guide-command', capabilities: example.capabilities, mapping: example.mapping })
    // A command sent as several messages shows them as a list, with an ack (and its reading) for each.
    const sent = encodeMessages(model, example.command).map((m) => m.payload.toString('utf8'))
    const sends: unknown[] = Array.isArray(example.sends) ? example.sends : [example.sends]
    expect(sent).toHaveLength(sends.length)
    sends.forEach((expected, i) => {
      if (typeof expected === 'string') expect(sent[i]).toBe(expected)
      else expect(JSON.parse(sent[i])).toEqual(expected)
    })
    const acks: unknown[] = Array.isArray(example.ack) ? example.ack : [example.ack]
    const decoded: unknown[] = Array.isArray(example.decoded) ? example.decoded : [example.decoded]
    expect(acks).toHaveLength(decoded.length)
    acks.forEach((ack, i) => {
      expect(decodeAck(model, Buffer.from(typeof ack === 'string' ? ack : JSON.stringify(ack)))).toEqual({ ok: true, ack: decoded[i] })
    })
  })

  it.each(tagged('invalid').map((e, i) => [i, e] as const))('invalid mapping example %i is refused with the message shown', async (i, example) => {
    const maker = await api.post('/v1/makers', { name: `Guide invalid ${i}` })
    const res = await api.post('/v1/models', { name: `invalid-${i}`, capabilities: example.capabilities, mapping: example.mapping }, maker.body.token)
    expect(res.status).toBe(422)
    expect(res.body.error).toEqual({ code: 'INVALID_MAPPING', message: `the mapping is not valid for this model: ${example.error}` })
  })

  it('lists every unit of the unit table, each with an example that holds', () => {
    const rows = [...guide.matchAll(/^\| `([^`]+)` \| (\S+) \| (.+?) → (\S+) \|/gm)]
    const documented = new Map(rows.map((m) => [m[1], { canonical: m[2], device: m[3].replace(/^"|"$/g, ''), value: Number(m[4]) }]))
    for (const c of unitConversions) {
      if (c.unit === c.canonical) continue
      const row = documented.get(c.unit)
      expect(row, `unit ${c.unit} in docs/makers.md`).toBeDefined()
      expect(row!.canonical).toBe(c.canonical)
      const device = /^[\d.-]+$/.test(row!.device) ? Number(row!.device) : row!.device
      expect(findConversion(c.unit, c.canonical)!.toCanonical(device), c.unit).toBe(row!.value)
    }
    expect(documented.size).toBe(unitConversions.filter((c) => c.unit !== c.canonical).length)
  })
})
