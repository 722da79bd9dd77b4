import { describe, expect, it } from 'vitest'
import { parseMapping, resolveCapabilities, type MappingInput } from '@trellis/device-sdk'
import { normalizeTelemetry, type NormalizeResult } from '../../hub/src/normalize/index.js'
import { localTimeReader } from '../../hub/src/normalize/mapping.js'
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

describe('the offsets a local-time reader keeps', () => {
  /** The instant a wall time names in `zone`, asked of the zone database without any cache. */
  const formats = new Map<string, Intl.DateTimeFormat>()
  function reference (zone: string, wall: number): number {
    let format = formats.get(zone)
    if (!format) formats.set(zone, format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' }))
    const offsetAt = (ms: number): number => {
      const f: Record<string, number> = {}
      for (const part of format.formatToParts(ms)) if (part.type !== 'literal') f[part.type] = Number(part.value)
      return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second) - Math.floor(ms / 1000) * 1000
    }
    return wall - offsetAt(wall - offsetAt(wall))
  }
  const text = (wall: number): string => new Date(wall).toISOString().slice(0, 19)

  it('read every 5 minutes around each change of offset as the zone database does, in zones of whole, half and quarter hours', () => {
    // Berlin and New York change by an hour, Lord Howe by half an hour, St John's has a -3:30 offset, Kathmandu +5:45.
    for (const zone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/St_Johns', 'Asia/Kathmandu']) {
      const read = localTimeReader(zone)
      const transitions = [Date.UTC(2026, 2, 29), Date.UTC(2026, 3, 5), Date.UTC(2026, 2, 8), Date.UTC(2026, 9, 4), Date.UTC(2026, 9, 25), Date.UTC(2026, 10, 1)]
      for (const day of transitions) {
        // Every 5 minutes from 12 hours before to 12 hours after, in order as a device's readings arrive.
        for (let wall = day - 43_200_000; wall <= day + 43_200_000; wall += 300_000) {
          expect(read(text(wall)), `${zone} ${text(wall)}`).toBe(reference(zone, wall))
        }
      }
    }
  })

  it('ask the zone database a few times for a day of readings, not twice a reading', () => {
    const read = localTimeReader('Europe/Berlin')
    const asked = { count: 0 }
    const real = Intl.DateTimeFormat.prototype.formatToParts
    Intl.DateTimeFormat.prototype.formatToParts = function (this: Intl.DateTimeFormat, date?: number | Date) { asked.count++; return real.call(this, date) }
    try {
      const day = Date.UTC(2026, 10, 18)
      for (let wall = day; wall < day + 86_400_000; wall += 10_000) read(text(wall))
    } finally {
      Intl.DateTimeFormat.prototype.formatToParts = real
    }
    // 8,640 readings over 96 quarter hours: two questions for each quarter hour, and one for its neighbour.
    expect(asked.count).toBeLessThanOrEqual(3 * 96 + 4)
  })
})
