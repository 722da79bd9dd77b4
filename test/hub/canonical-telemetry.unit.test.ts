import { describe, expect, it } from 'vitest'
import { resolveCapabilities } from '@trellis/device-sdk'
import { normalizeCanonical } from '../../hub/src/normalize/canonical.js'
import type { CompiledModel } from '../../hub/src/normalize/model.js'

const model: CompiledModel = {
  id: 'md-1',
  name: 'thermo-1',
  makerId: 'mk-1',
  capabilities: new Map(resolveCapabilities(['temperature', 'power']).map((c) => [c.name, c])),
  mapping: null,
  heartbeatMs: null,
}
const now = Date.UTC(2026, 0, 1)
const normalize = (payload: unknown) => normalizeCanonical(Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), model, now)

describe('canonical telemetry', () => {
  it('takes epoch-ms and ISO-8601 timestamps, and arrival time without one', () => {
    expect(normalize({ ts: now - 1000, readings: { temperature: 20 } })).toEqual({ ok: true, value: { ts: now - 1000, readings: [{ capability: 'temperature', value: 20 }], problems: [] } })
    expect(normalize({ ts: new Date(now - 5000).toISOString(), readings: { power: true } })).toMatchObject({ ok: true, value: { ts: now - 5000 } })
    expect(normalize({ readings: { temperature: 20 } })).toMatchObject({ ok: true, value: { ts: now } })
  })

  it('keeps valid readings and names the refused ones', () => {
    const result = normalize({ readings: { temperature: 412, power: false, co2: 1 } })
    expect(result).toMatchObject({ ok: true, value: { readings: [{ capability: 'power', value: false }] } })
    if (!result.ok) throw new Error('expected ok')
    expect(result.value.problems).toEqual(['temperature 412 is out of range -50..150 for model thermo-1', 'model thermo-1 has no capability co2'])
  })

  it('refuses what is not the envelope, saying where', () => {
    expect(normalize('{"readings":')).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not JSON: /) })
    expect(normalize([1, 2])).toEqual({ ok: false, reason: 'payload is not canonical telemetry: (root): Invalid input: expected object, received array' })
    expect(normalize({ readings: [20] })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not canonical telemetry: readings: /) })
    expect(normalize({ temperature: 20 })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not canonical telemetry: readings: /) })
    expect(normalize({ ts: -5, readings: {} })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not canonical telemetry: ts: /) })
    expect(normalize({ ts: 1.5, readings: {} })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not canonical telemetry: ts: /) })
    expect(normalize({ ts: 'yesterday', readings: {} })).toMatchObject({ ok: false, reason: expect.stringMatching(/^payload is not canonical telemetry: ts: /) })
  })

  it('refuses implausible timestamps', () => {
    expect(normalize({ ts: 5, readings: { temperature: 20 } })).toEqual({ ok: false, reason: 'timestamp 1970-01-01T00:00:00.005Z is before 2000; send epoch milliseconds or ISO-8601' })
    expect(normalize({ ts: now + 2 * 86_400_000, readings: { temperature: 20 } })).toMatchObject({ ok: false, reason: expect.stringMatching(/more than a day in the future$/) })
  })
})
