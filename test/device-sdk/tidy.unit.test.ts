import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { tidy } from '@trellis/device-sdk'

// tidy rounds to 12 significant digits in arithmetic where it can; it must give exactly what the text round trip gives.
const byText = (value: number): number => Number(value.toPrecision(12))

describe('tidy', () => {
  it('gives exactly Number(value.toPrecision(12)) for any finite double', () => {
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (value) => {
      expect(Object.is(tidy(value), byText(value))).toBe(true)
    }), { numRuns: 200_000 })
  })

  it('gives exactly the same for the values unit conversions produce: readings of every size, converted and scaled', () => {
    const factors = [5 / 9, 9 / 5, 0.001, 1000, 3.6, 1 / 3.6, 0.1, 0.01, 1 / 1.8, 0.0254, 1_000_000]
    fc.assert(fc.property(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 0, max: 4 }), fc.constantFrom(...factors), fc.constantFrom(0, -32, 273.15, -459.67),
      (raw, decimals, factor, offset) => {
        const value = (raw / 10 ** decimals + offset) * factor
        expect(tidy(value)).toBe(byText(value))
      }), { numRuns: 200_000 })
  })

  it('gives exactly the same on the cases its arithmetic could get wrong: halfway between two 12-digit values, and next to powers of ten', () => {
    // A 13th digit of 5: the multiplication's own rounding decides which way an arithmetic rounding goes.
    fc.assert(fc.property(fc.integer({ min: 100_000_000_000, max: 999_999_999_999 }), fc.integer({ min: -10, max: 11 }), fc.boolean(), (n, exponent, negative) => {
      const value = (negative ? -1 : 1) * (n + 0.5) * 10 ** (exponent - 11)
      expect(tidy(value)).toBe(byText(value))
    }), { numRuns: 100_000 })
    // The doubles either side of every power of ten in range, where log10 may be a hair off.
    const step = (x: number, up: boolean): number => {
      const view = new DataView(new ArrayBuffer(8))
      view.setFloat64(0, x)
      view.setBigUint64(0, view.getBigUint64(0) + (up ? 1n : -1n))
      return view.getFloat64(0)
    }
    for (let j = -12; j <= 12; j++) {
      const power = Number(`1e${j}`)
      for (const value of [power, step(power, true), step(power, false), step(step(power, false), false)]) {
        expect(tidy(value), String(value)).toBe(byText(value))
        expect(tidy(-value), String(-value)).toBe(byText(-value))
      }
    }
  })

  it('cuts float noise and keeps what the device meant, at the edges of its arithmetic too', () => {
    expect(tidy((70.7 - 32) * 5 / 9)).toBe(21.5)
    expect(tidy(0.1 + 0.2)).toBe(0.3)
    expect(tidy(21.600000000000001)).toBe(21.6)
    for (const value of [1e12, 999999999999.5, 1e-11, 9.99999999999e-12, 0.5, 1.0000000000005, 123456789012.5, -0.000123456789012345, 1e21, 5e-324, Number.MAX_VALUE, -0]) {
      expect(tidy(value)).toBe(byText(value))
    }
  })
})
