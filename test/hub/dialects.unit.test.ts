import { describe, expect, it } from 'vitest'
import type { ReadingValue } from '@trellis/device-sdk'
import { builtInDialects } from '@trellis/hub/adapters'
import { compileDeclaration } from '../support/dialects.js'
import { normalizeTelemetry } from '../../hub/src/normalize/index.js'
import { decodeAck, encodeCommand } from '../../hub/src/normalize/commands.js'


const arrival = Date.parse('2026-11-18T12:00:00.000Z')

describe.each(builtInDialects.map((d) => [d.model.name, d] as const))('built-in dialect %s', (_name, dialect) => {
  const model = compileDeclaration(dialect.model)

  it.each(dialect.samples.map((s, i) => [i, s] as const))('turns recorded payload %i into the exact canonical readings', (_i, sample) => {
    const result = normalizeTelemetry(Buffer.from(sample.payload), model, arrival)
    expect(result).toMatchObject({ ok: true })
    if (!result.ok) return
    const readings: Record<string, ReadingValue> = {}
    for (const r of result.value.readings) readings[r.capability] = r.value
    expect(readings).toEqual(sample.readings)
    expect(result.value.problems).toEqual([])
    expect(new Date(result.value.ts).toISOString()).toBe(sample.ts ?? new Date(arrival).toISOString())
  })

  it('encodes a canonical command in the dialect and decodes its ack', () => {
    const { command, payload, ack, decoded } = dialect.commandSample
    expect(encodeCommand(model, command).toString('utf8')).toBe(payload)
    expect(decodeAck(model, Buffer.from(ack))).toEqual({ ok: true, ack: decoded })
  })
})

describe('dialect details', () => {
  const byName = (name: string) => compileDeclaration(builtInDialects.find((d) => d.model.name === name)!.model)

  it('reports an unknown door state precisely and keeps the rest of the message', () => {
    const fridge = byName('frostline-f2')
    const result = normalizeTelemetry(Buffer.from('{"t":1795000000,"data":{"temps_x10":[1890],"door":"AJAR"},"rssi":-60}'), fridge, arrival)
    expect(result.ok && result.value.readings).toEqual([{ capability: 'rssi', value: -60 }])
    expect(result.ok && result.value.problems).toEqual([
      'readings[0] (data.temps_x10[0] → temperature): temperature 189 is out of range -50..150 for model frostline-f2',
      'readings[2] (data.door → contact): "AJAR" is not in the map; expected one of CLOSED, OPEN',
    ])
  })

  it('answers a failed ack of each brand as an error with the reason the device gave', () => {
    expect(decodeAck(byName('voltwise-p1'), Buffer.from('ID=c9;RESULT=BUSY;ERR=relay welded'))).toEqual({ ok: true, ack: { id: 'c9', status: 'error', error: 'relay welded' } })
    expect(decodeAck(byName('breezewell-ap3'), Buffer.from('{"id":"c9","result":[{"siid":2,"piid":1,"code":-4004}]}')))
      .toEqual({ ok: true, ack: { id: 'c9', status: 'error', error: 'the device answered result[0].code=-4004' } })
    expect(decodeAck(byName('sudsmith-w8'), Buffer.from('{"code":0}'))).toEqual({ ok: false, reason: 'ack has no command id at cid' })
  })

  it('says an action with its params in the dialect', () => {
    const washer = byName('sudsmith-w8')
    expect(encodeCommand(washer, { id: 'c1', action: 'start', params: { programme: 'eco' } }).toString()).toBe('{"cid":"c1","cmd":{"op":"START","prog":"eco"}}')
    expect(encodeCommand(washer, { id: 'c2', action: 'pause' }).toString()).toBe('{"cid":"c2","cmd":{"op":"PAUSE"}}')
  })

  it('refuses commands the dialect cannot say', () => {
    const washer = byName('sudsmith-w8')
    expect(() => encodeCommand(washer, { id: 'c1', set: { lock: true } })).toThrow('model sudsmith-w8 has no command for lock; it takes "set" of power and the actions start, pause')
    expect(() => encodeCommand(washer, { id: 'c1', action: 'rinse' })).toThrow('model sudsmith-w8 has no action rinse; it takes "set" of power and the actions start, pause')
    expect(() => encodeCommand(washer, { id: 'c1', action: 'start', params: { temperature: 40 } })).toThrow('action start of model sudsmith-w8 takes the params programme, not temperature')
    expect(() => encodeCommand(washer, { id: 'c1', action: 'pause', params: { programme: 'eco' } })).toThrow('action pause of model sudsmith-w8 takes no params, not programme')
    expect(() => encodeCommand(washer, { id: 'c1' })).toThrow('the command neither sets anything nor names an action; model sudsmith-w8 takes "set" of power and the actions start, pause')
    expect(() => encodeCommand(byName('hearthway-t100'), { id: 'c1', set: { mode: 'dry' } })).toThrow('mode "dry" has no device value in the map of model hearthway-t100')
  })
})
