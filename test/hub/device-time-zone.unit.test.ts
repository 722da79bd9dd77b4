import { afterEach, describe, expect, it } from 'vitest'
import type { MappingInput } from '@trellis/device-sdk'
import { normalizeTelemetry, type NormalizeResult } from '../../hub/src/normalize/index.js'
import { compileDeclaration } from '../support/dialects.js'

// A local time without an offset is read in the device's own zone when it has one, else in the
// mapping's, else in UTC; the readers are built once per zone, never per reading.

const now = Date.parse('2026-11-18T12:00:00.000Z')
const readings: MappingInput['readings'] = [{ path: 'v', capability: 'humidity' }]
const payload = Buffer.from('{"Time":"2026-11-18T08:00:00","v":40}')

function modelWith (timestamp: MappingInput['timestamp'], name: string) {
  return compileDeclaration({ name, capabilities: ['humidity'], mapping: { format: 'json', timestamp, readings } })
}

function tsOf (result: NormalizeResult): string {
  return result.ok ? new Date(result.value.ts).toISOString() : result.reason
}

const RealDateTimeFormat = Intl.DateTimeFormat
afterEach(() => { Intl.DateTimeFormat = RealDateTimeFormat })

/** Counts the Intl.DateTimeFormat objects built while `run` runs. */
function formatsBuilt (run: () => void): number {
  let built = 0
  Intl.DateTimeFormat = new Proxy(RealDateTimeFormat, { construct (target, args) { built++; return new target(...(args as [])) } })
  try {
    run()
  } finally {
    Intl.DateTimeFormat = RealDateTimeFormat
  }
  return built
}

describe('a device\'s own time zone', () => {
  it('reads a local time in the device\'s zone before the mapping\'s', () => {
    const berlin = modelWith({ path: 'Time', unit: 'iso', zone: 'Europe/Berlin' }, 'zoned-1')
    expect(tsOf(normalizeTelemetry(payload, berlin, now, 'Asia/Tokyo'))).toBe('2026-11-17T23:00:00.000Z')
    expect(tsOf(normalizeTelemetry(payload, berlin, now, 'America/New_York'))).toBe('2026-11-18T13:00:00.000Z')
    expect(tsOf(normalizeTelemetry(payload, berlin, now, 'UTC'))).toBe('2026-11-18T08:00:00.000Z')
  })

  it('falls back to the mapping\'s zone, then to UTC, for a device without one', () => {
    expect(tsOf(normalizeTelemetry(payload, modelWith({ path: 'Time', unit: 'iso', zone: 'Europe/Berlin' }, 'zoned-2'), now, null))).toBe('2026-11-18T07:00:00.000Z')
    expect(tsOf(normalizeTelemetry(payload, modelWith({ path: 'Time', unit: 'iso' }, 'zoned-3'), now))).toBe('2026-11-18T08:00:00.000Z')
  })

  it('leaves a time that carries its own offset as it is, and epoch time alone', () => {
    const model = modelWith({ path: 'Time', unit: 'iso', zone: 'Europe/Berlin' }, 'zoned-4')
    expect(tsOf(normalizeTelemetry(Buffer.from('{"Time":"2026-11-18T08:00:00+02:00","v":40}'), model, now, 'Asia/Tokyo'))).toBe('2026-11-18T06:00:00.000Z')
    const epoch = modelWith({ path: 't', unit: 's' }, 'zoned-5')
    expect(tsOf(normalizeTelemetry(Buffer.from('{"t":1794816000,"v":40}'), epoch, now, 'Asia/Tokyo'))).toBe('2026-11-16T08:00:00.000Z')
  })

  it('builds a zone\'s reader once, however many readings and devices use it, and none for devices without a zone', () => {
    const model = modelWith({ path: 'Time', unit: 'iso', zone: 'Europe/Berlin' }, 'zoned-6')
    // Warm: the first reading in a zone this process has not read yet may build its reader.
    normalizeTelemetry(payload, model, now, 'Pacific/Auckland')
    expect(formatsBuilt(() => {
      for (let i = 0; i < 200; i++) {
        expect(tsOf(normalizeTelemetry(payload, model, now, 'Pacific/Auckland'))).toBe('2026-11-17T19:00:00.000Z')
        expect(tsOf(normalizeTelemetry(payload, model, now, null))).toBe('2026-11-18T07:00:00.000Z')
        expect(tsOf(normalizeTelemetry(payload, model, now))).toBe('2026-11-18T07:00:00.000Z')
      }
    })).toBe(0)
    // Another model's devices in the same zone share the reader.
    const other = modelWith({ path: 'Time', unit: 'iso' }, 'zoned-7')
    expect(formatsBuilt(() => { normalizeTelemetry(payload, other, now, 'Pacific/Auckland') })).toBe(0)
  })
})
