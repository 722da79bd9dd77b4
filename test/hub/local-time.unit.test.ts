import { describe, expect, it } from 'vitest'
import { parseMapping, resolveCapabilities, type MappingInput } from '@trellis/device-sdk'
import { normalizeTelemetry, type NormalizeResult } from '../../hub/src/normalize/index.js'
import { compileDeclaration } from '../support/dialects.js'

const now = Date.parse('2026-11-18T12:00:00.000Z')
const readings: MappingInput['readings'] = [{ path: 'v', capability: 'humidity' }]

function tsOf (timestamp: MappingInput['timestamp'], payload: object): string {
  const model = compileDeclaration({ name: 'clock-1', capabilities: ['humidity'], mapping: { format: 'json', timestamp, readings } })
  const result: NormalizeResult = normalizeTelemetry(Buffer.from(JSON.stringify(payload)), model, now)
  return result.ok ? new Date(result.value.ts).toISOString() : result.reason
}

describe('local timestamps without a zone', () => {
  it('are read in the mapping\'s time zone, winter and summer time alike', () => {
    const timestamp = { path: 'Time', unit: 'iso', zone: 'Europe/Berlin' } as const
    expect(tsOf(timestamp, { Time: '2026-11-18T08:00:00', v: 1 })).toBe('2026-11-18T07:00:00.000Z')
    expect(tsOf(timestamp, { Time: '2026-07-01T08:00:00.250', v: 1 })).toBe('2026-07-01T06:00:00.250Z')
    expect(tsOf({ path: 'Time', unit: 'iso', zone: 'America/New_York' }, { Time: '2026-11-18 06:30', v: 1 })).toBe('2026-11-18T11:30:00.000Z')
  })

  it('are read as UTC without a zone, whatever the hub\'s own time zone', () => {
    const own = process.env.TZ
    // Node follows TZ as it changes: a hub running in Tokyo must read the same instant.
    process.env.TZ = 'Asia/Tokyo'
    try {
      expect(new Date(2026, 10, 18).getTimezoneOffset()).toBe(-540)
      expect(tsOf({ path: 'Time', unit: 'iso' }, { Time: '2026-11-18T08:00:00', v: 1 })).toBe('2026-11-18T08:00:00.000Z')
    } finally {
      if (own === undefined) delete process.env.TZ
      else process.env.TZ = own
    }
  })

  it('keep the offset they carry', () => {
    expect(tsOf({ path: 'Time', unit: 'iso', zone: 'Europe/Berlin' }, { Time: '2026-11-18T08:00:00Z', v: 1 })).toBe('2026-11-18T08:00:00.000Z')
  })

  it('refuses a zone that is not an IANA time zone, naming the field', () => {
    expect(() => parseMapping({ format: 'json', timestamp: { path: 't', unit: 'iso', zone: 'Mars/Olympus' }, readings }, resolveCapabilities(['humidity'])))
      .toThrow('timestamp.zone: an IANA time zone such as Europe/Berlin or UTC')
    expect(() => parseMapping({ format: 'json', timestamp: { path: 't', unit: 's', zone: 'UTC' }, readings }, resolveCapabilities(['humidity'])))
      .toThrow('timestamp.zone: only for unit "iso" (epoch time has no zone)')
  })
})
