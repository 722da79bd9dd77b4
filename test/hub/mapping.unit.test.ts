import { describe, expect, it } from 'vitest'
import type { CapabilityDeclaration, MappingInput } from '@trellis/device-sdk'
import { normalizeTelemetry, type NormalizeResult } from '../../hub/src/normalize/index.js'
import { encodeCommand } from '../../hub/src/normalize/commands.js'
import { compileDeclaration } from '../support/dialects.js'

const now = Date.parse('2026-11-18T12:00:00.000Z')
const capabilities: CapabilityDeclaration[] = ['temperature', 'humidity', 'power', 'powerDraw', 'contact', { name: 'mode', enum: ['eco', 'boost'] }, 'remainingTime', 'firmwareVersion', 'fanSpeed', 'targetTemperature']

function run (mapping: MappingInput, payload: string | object): NormalizeResult {
  const model = compileDeclaration({ name: 'probe-1', capabilities, mapping })
  return normalizeTelemetry(Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), model, now)
}

function readingsOf (result: NormalizeResult): Record<string, unknown> {
  if (!result.ok) throw new Error(result.reason)
  return Object.fromEntries(result.value.readings.map((r) => [r.capability, r.value]))
}

describe('json payloads', () => {
  it('follows nested paths and array indexes', () => {
    const result = run({ format: 'json', readings: [{ path: 'sensors[1].t', capability: 'temperature' }, { path: '[0]', capability: 'humidity' }] }, { sensors: [{ t: 1 }, { t: 22.5 }] })
    expect(readingsOf(result)).toEqual({ temperature: 22.5 })
    expect(readingsOf(run({ format: 'json', readings: [{ path: '[0].rh', capability: 'humidity' }] }, [{ rh: 40 }]))).toEqual({ humidity: 40 })
  })

  it('applies scale then offset then the unit', () => {
    // (1234 × 0.1 + 5) °F = 128.4 °F = 53.555… °C
    const result = run({ format: 'json', readings: [{ path: 'v', capability: 'temperature', scale: 0.1, offset: 5, unit: '°F' }] }, { v: 1234 })
    expect(readingsOf(result)).toEqual({ temperature: 53.5555555556 })
  })

  it('maps numbers, text and booleans through a value map', () => {
    const mapping: MappingInput = {
      format: 'json',
      readings: [
        { path: 'relay', capability: 'power', map: { 1: true, 0: false } },
        { path: 'door', capability: 'contact', map: { true: false, false: true } },
        { path: 'm', capability: 'mode', map: { E: 'eco', B: 'boost' } },
      ],
    }
    expect(readingsOf(run(mapping, { relay: 1, door: true, m: 'B' }))).toEqual({ power: true, contact: false, mode: 'boost' })
  })

  it('takes enum and text values as they are when there is no map', () => {
    const mapping: MappingInput = { format: 'json', readings: [{ path: 'm', capability: 'mode' }, { path: 'fw', capability: 'firmwareVersion' }] }
    expect(readingsOf(run(mapping, { m: 'eco', fw: 310 }))).toEqual({ mode: 'eco', firmwareVersion: '310' })
  })

  it('keeps the good readings and says precisely what was wrong with the others', () => {
    const mapping: MappingInput = {
      format: 'json',
      readings: [
        { path: 'a', capability: 'temperature' },
        { path: 'b', capability: 'power' },
        { path: 'c', capability: 'humidity' },
        { path: 'd', capability: 'remainingTime', unit: 'hh:mm:ss' },
        { path: 'e', capability: 'powerDraw' },
      ],
    }
    const result = run(mapping, { a: 20, b: 'ON', c: { v: 1 }, d: 'soon', e: 'n/a' })
    expect(readingsOf(result)).toEqual({ temperature: 20 })
    expect(result.ok && result.value.problems).toEqual([
      'readings[1] (b → power): expected true or false, got "ON"; map it, e.g. "map": {"ON": true, "OFF": false}',
      'readings[2] (c → humidity): expected a number, got an object',
      'readings[3] (d → remainingTime): "soon" is not a duration hh:mm:ss',
      'readings[4] (e → powerDraw): expected a number, got "n/a"',
    ])
  })

  it('rejects a payload that is not JSON, or that holds none of the mapped values', () => {
    const mapping: MappingInput = { format: 'json', readings: [{ path: 'a.b', capability: 'temperature' }] }
    expect(run(mapping, 'a=1')).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not JSON/) })
    expect(run(mapping, { a: 1 })).toEqual({ ok: false, reason: 'none of the mapped values is in the payload (looked for a.b)' })
  })
})

describe('timestamps', () => {
  const readings: MappingInput['readings'] = [{ path: 'v', capability: 'humidity' }]
  const tsOf = (result: NormalizeResult) => result.ok ? new Date(result.value.ts).toISOString() : result.reason

  it('reads epoch seconds, epoch milliseconds and ISO-8601', () => {
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 's' }, readings }, { t: 1795000000, v: 1 }))).toBe('2026-11-18T11:06:40.000Z')
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 'ms' }, readings }, { t: 1795000000123, v: 1 }))).toBe('2026-11-18T11:06:40.123Z')
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 'iso' }, readings }, { t: '2026-11-18T13:06:40+02:00', v: 1 }))).toBe('2026-11-18T11:06:40.000Z')
  })

  it('uses the arrival time when the payload has no clock reading', () => {
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 's' }, readings }, { v: 1 }))).toBe(new Date(now).toISOString())
  })

  it('rejects an implausible or unreadable clock', () => {
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 'ms' }, readings }, { t: 1795000000, v: 1 }))).toMatch(/^timestamp 1970-01-21T\S+ is before 2000/)
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 's' }, readings }, { t: 'yesterday', v: 1 }))).toBe('timestamp at t should be epoch seconds, got "yesterday"')
    expect(tsOf(run({ format: 'json', timestamp: { path: 't', unit: 'iso' }, readings }, { t: 5, v: 1 }))).toBe('timestamp at t should be ISO-8601 text, got 5')
  })
})

describe('property lists and key=value text', () => {
  it('matches items of a root list by their keys', () => {
    const mapping: MappingInput = {
      format: 'properties',
      properties: { keys: ['node', 'prop'], value: 'v' },
      readings: [{ match: { node: 'a', prop: 7 }, capability: 'humidity' }, { match: { node: 'b', prop: 7 }, capability: 'temperature' }],
    }
    expect(readingsOf(run(mapping, [{ node: 'b', prop: 7, v: 19 }, { node: 'a', prop: 7, v: 55 }, 'noise']))).toEqual({ humidity: 55, temperature: 19 })
    expect(run(mapping, { items: [] })).toEqual({ ok: false, reason: 'payload has no property list at (root)' })
  })

  it('reads key=value text with its own separators, numbers as text included', () => {
    const mapping: MappingInput = {
      format: 'keyvalue',
      keyValue: { separator: '&', assign: ':' },
      readings: [{ path: 'P', capability: 'powerDraw', unit: 'kW' }, { path: 'ON', capability: 'power', map: { Y: true, N: false } }],
    }
    expect(readingsOf(run(mapping, 'P: 1.25 & ON:Y&junk'))).toEqual({ powerDraw: 1250, power: true })
  })
})

describe('commands', () => {
  it('builds nested command payloads with constant fields, converting units back', () => {
    const model = compileDeclaration({
      name: 'probe-1',
      capabilities,
      mapping: {
        format: 'json',
        readings: [{ path: 't', capability: 'temperature' }],
        commands: {
          id: 'meta.id',
          fields: { 'meta.v': 2, op: 'write' },
          set: [
            { path: 'args.sp', capability: 'targetTemperature', unit: 'd°F' },
            { path: 'args.fan', capability: 'fanSpeed', unit: 'ratio' },
            { path: 'args.m', capability: 'mode', map: { 1: 'eco', 2: 'boost' } },
          ],
        },
      },
    })
    const payload = encodeCommand(model, { id: 'c1', set: { targetTemperature: 21.5, fanSpeed: 35, mode: 'boost' } })
    expect(JSON.parse(payload.toString())).toEqual({ meta: { id: 'c1', v: 2 }, op: 'write', args: { sp: 707, fan: 0.35, m: 2 } })
  })

  it('sends canonical JSON to a model without a mapping', () => {
    const model = compileDeclaration({ name: 'plain-1', capabilities })
    expect(encodeCommand(model, { id: 'c1', set: { power: true } }).toString()).toBe('{"id":"c1","set":{"power":true}}')
  })
})

describe('a stored mapping that no longer parses', () => {
  it('dead-letters the payloads with the reason instead of failing the device', () => {
    const model = compileDeclaration({ name: 'old-1', capabilities, mapping: { format: 'json', readings: [{ path: 't', capability: 'temperature', unit: 'fahrenheit' }] } })
    expect(normalizeTelemetry(Buffer.from('{"t": 70}'), model, now)).toEqual({
      ok: false,
      reason: 'the stored mapping of model old-1 is not valid (readings[0].unit: unknown unit "fahrenheit"; use one of °F, K, d°C, d°F, °C); replace it with PUT /v1/models/md_old-1/mapping',
    })
    expect(() => encodeCommand(model, { id: 'c1', set: { power: true } })).toThrow(/^the stored mapping of model old-1 is not valid/)
  })
})
