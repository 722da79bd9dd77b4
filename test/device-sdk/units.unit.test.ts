import { describe, expect, it } from 'vitest'
import { findConversion, formatClockDuration, parseClockDuration, unitConversions, unitsFor, catalogue } from '@trellis/device-sdk'

/** [device unit, canonical unit, device value, canonical value] */
const cases: Array<[string, string, number | string, number]> = [
  ['°F', '°C', 212, 100],
  ['°F', '°C', 70.7, 21.5],
  ['°F', '°C', -40, -40],
  ['K', '°C', 273.15, 0],
  ['K', '°C', 300, 26.85],
  ['d°C', '°C', 215, 21.5],
  ['d°C', '°C', -183, -18.3],
  ['d°F', '°C', 707, 21.5],
  ['mW', 'W', 276_900, 276.9],
  ['kW', 'W', 3.5, 3500],
  ['Wh', 'kWh', 15_230.5, 15.2305],
  ['MWh', 'kWh', 1.2, 1200],
  ['J', 'kWh', 3_600_000, 1],
  ['mV', 'V', 3300, 3.3],
  ['dV', 'V', 2301, 230.1],
  ['mA', 'A', 1204, 1.204],
  ['ms', 's', 1500, 1.5],
  ['min', 's', 42, 2520],
  ['h', 's', 1.5, 5400],
  ['hh:mm:ss', 's', '01:12:30', 4350],
  ['ratio', '%', 0.42, 42],
  ['‰', '%', 425, 42.5],
  ['ppb', 'ppm', 850, 0.85],
  ['mg/m³', 'µg/m³', 0.035, 35],
  ['klx', 'lx', 12.5, 12_500],
  ['mired', 'K', 250, 4000],
]

describe('the unit table converts both ways', () => {
  it.each(cases)('%s → %s: %s is %s and back', (unit, canonical, device, value) => {
    const c = findConversion(unit, canonical)
    expect(c, `${unit} → ${canonical}`).toBeDefined()
    expect(c!.toCanonical(device)).toBe(value)
    expect(c!.fromCanonical(value)).toBe(device)
  })

  it('has a case above for every non-identity conversion', () => {
    const tested = new Set(cases.map(([u, c]) => `${u}→${c}`))
    const untested = unitConversions.filter((c) => c.unit !== c.canonical && !tested.has(`${c.unit}→${c.canonical}`))
    expect(untested.map((c) => c.unit)).toEqual([])
  })

  it('converts every canonical unit of the catalogue to itself', () => {
    for (const spec of Object.values(catalogue)) {
      if (!('unit' in spec)) continue
      const c = findConversion(spec.unit, spec.unit)
      expect(c, spec.unit).toBeDefined()
      expect(c!.toCanonical(12.5)).toBe(12.5)
      expect(c!.fromCanonical(12.5)).toBe(12.5)
    }
  })

  it('reads numeric text, as key=value payloads carry it, and refuses what is not a number', () => {
    expect(findConversion('Wh', 'kWh')!.toCanonical(' 1500 ')).toBe(1.5)
    expect(() => findConversion('Wh', 'kWh')!.toCanonical('lots')).toThrow(/"lots" is not a number/)
    expect(() => findConversion('Wh', 'kWh')!.toCanonical('')).toThrow(/not a number/)
  })

  it('offers the units that fit a canonical unit', () => {
    expect(unitsFor('°C')).toEqual(['°F', 'K', 'd°C', 'd°F', '°C'])
    expect(findConversion('°F', 'W')).toBeUndefined()
  })
})

describe('clock durations', () => {
  it('reads hh:mm:ss, mm:ss and long programmes', () => {
    expect(parseClockDuration('00:00:05')).toBe(5)
    expect(parseClockDuration('12:30')).toBe(750)
    expect(parseClockDuration('100:00:00')).toBe(360_000)
    expect(parseClockDuration(90)).toBe(90)
  })

  it('refuses what is not a clock', () => {
    expect(() => parseClockDuration('1h12m')).toThrow('"1h12m" is not a duration hh:mm:ss')
    expect(() => parseClockDuration('01:75:00')).toThrow(/not a duration/)
  })

  it('writes seconds as hh:mm:ss', () => {
    expect(formatClockDuration(4350)).toBe('01:12:30')
    expect(formatClockDuration(0)).toBe('00:00:00')
    expect(formatClockDuration(360_000)).toBe('100:00:00')
  })
})
