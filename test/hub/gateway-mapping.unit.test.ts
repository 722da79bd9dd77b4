import { describe, expect, it } from 'vitest'
import { maxGatewayEntries, MappingError, parseMapping, resolveCapabilities, type MappingInput } from '@trellis/device-sdk'
import { normalizeTelemetry } from '../../hub/src/normalize/index.js'
import { compileDeclaration } from '../support/dialects.js'

const now = Date.parse('2026-11-18T12:00:00.000Z')
const gatewayMapping: MappingInput = { format: 'json', gateway: { list: 'rx', child: 'node.id', payload: 'frame' }, readings: [] }
const sensor = compileDeclaration({ name: 'radio-th-1', capabilities: ['temperature', 'battery'], mapping: { format: 'binary', binary: { encoding: 'hex' }, readings: [{ bytes: { offset: 0, type: 'i16' }, capability: 'temperature', scale: 0.01 }, { bytes: { offset: 2, type: 'u8' }, capability: 'battery' }] } })

function refusal (mapping: unknown): string[] {
  try {
    parseMapping(mapping, resolveCapabilities(['rssi']))
  } catch (err) {
    if (err instanceof MappingError) return err.issues
    throw err
  }
  throw new Error('the mapping was accepted')
}

describe('gateway mappings', () => {
  it('splits a gateway message into its children\'s entries, each payload passed as its bytes for the child\'s own model', () => {
    const gateway = compileDeclaration({ name: 'radio-gw-1', capabilities: ['rssi'], mapping: gatewayMapping })
    const read = gateway.mapping!.gateway!
    expect(gateway.mapping!.ownReadings).toBe(false)
    const split = read(Buffer.from(JSON.stringify({ rx: [{ node: { id: 'dev-a' }, frame: '086657' }, { node: { id: 7 }, frame: '00' }, { node: { id: 'dev-b' } }, { node: { id: 'dev-c' }, frame: { t: 1 } }] })))
    expect(split).toEqual({
      ok: true,
      entries: [
        { ok: true, where: 'rx[0]', child: 'dev-a', payload: Buffer.from('086657') },
        { ok: false, where: 'rx[1]', reason: 'rx[1].node.id: should be a device id, got 7' },
        { ok: false, where: 'rx[2]', reason: 'rx[2].frame: entry for device dev-b has no payload' },
        { ok: true, where: 'rx[3]', child: 'dev-c', payload: Buffer.from('{"t":1}') },
      ],
    })
    const first = split.ok && split.entries[0].ok ? split.entries[0].payload : Buffer.alloc(0)
    const child = normalizeTelemetry(first, sensor, now)
    expect(child.ok && child.value.readings).toEqual([{ capability: 'temperature', value: 21.5 }, { capability: 'battery', value: 87 }])
  })

  it('says why a message has no entries, and reads at most the bounded number of them', () => {
    const read = compileDeclaration({ name: 'radio-gw-2', capabilities: ['rssi'], mapping: gatewayMapping }).mapping!.gateway!
    expect(read(Buffer.from('{"rx":{}}'))).toEqual({ ok: false, reason: 'gateway message has no list of entries at rx (got an object)' })
    expect(read(Buffer.from('not json')).ok).toBe(false)
    const many = read(Buffer.from(JSON.stringify({ rx: Array.from({ length: maxGatewayEntries + 3 }, (_, i) => ({ node: { id: `dev-${i}` }, frame: '00' })) })))
    expect(many.ok && many.entries.length).toBe(maxGatewayEntries + 1)
    expect(many.ok && many.entries.at(-1)).toEqual({ ok: false, where: `rx[${maxGatewayEntries}]`, reason: `rx[${maxGatewayEntries}]: a gateway message carries at most ${maxGatewayEntries} entries; the 3 from here on were not read` })
  })

  it('refuses a gateway section with invalid paths, a format other than json, or one place for the id and the payload, naming the field', () => {
    expect(refusal({ format: 'json', gateway: { list: 'rx..', child: 'id', payload: 'frame[x]' }, readings: [] })).toEqual([
      'gateway.list: a path such as data.temp or sensors[2].value',
      'gateway.payload: a path such as data.temp or sensors[2].value',
    ])
    expect(refusal({ format: 'json', gateway: { list: 'rx', child: 'a.__proto__', payload: 'p' }, readings: [] })).toEqual(['gateway.child: a path may not use __proto__, prototype or constructor'])
    expect(refusal({ format: 'keyvalue', gateway: { list: 'rx', child: 'node', payload: 'node.frame' }, readings: [] })).toEqual([
      'gateway: a gateway\'s message is JSON; use format "json", not "keyvalue"',
      'gateway.payload: node.frame and gateway.child node are one place in an entry; give the child\'s id and its payload their own paths',
    ])
  })

  it('refuses a mapping without readings unless it is a gateway\'s', () => {
    expect(refusal({ format: 'json', readings: [] })).toEqual(['readings: at least one rule (only a gateway\'s mapping may have none, its children\'s models reading their values)'])
    expect(parseMapping(gatewayMapping, resolveCapabilities(['rssi'])).gateway).toEqual({ list: 'rx', child: 'node.id', payload: 'frame' })
  })
})
