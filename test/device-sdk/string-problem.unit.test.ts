import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkValue, resolveCapabilities, stringProblem } from '@trellis/device-sdk'
import { hostileString } from '../support/strings.js'

// The rule as the regexes state it, written apart from the SDK: stringProblem skips
// them for plain text (a loop over code units), and must refuse exactly what they refuse.
const control = /[\u0000-\u001f\u007f-\u009f]/
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const refusedByRule = (s: string) => control.test(s) || loneSurrogate.test(s)

describe('string reading check (plain-text fast path and regex path)', () => {
  it('agree on every single UTF-16 code unit, alone and between plain text', () => {
    const disagreements: string[] = []
    for (let c = 0; c <= 0xffff; c++) {
      const unit = String.fromCharCode(c)
      for (const s of [unit, `v1.${unit}.2`]) {
        if ((stringProblem('firmwareVersion', s) !== null) !== refusedByRule(s)) disagreements.push(`U+${c.toString(16).padStart(4, '0')} in ${JSON.stringify(s)}`)
      }
    }
    expect(disagreements).toEqual([])
  })

  it('accept well-formed surrogate pairs and refuse reversed or cut ones', () => {
    expect(stringProblem('firmwareVersion', 'v2 😀')).toBeNull()
    expect(stringProblem('firmwareVersion', '😀😀')).toBeNull()
    expect(stringProblem('firmwareVersion', 'v2 \ude00\ud83d')).toMatch(/lone surrogate \(U\+DE00\) at index 3/)
    expect(stringProblem('firmwareVersion', 'v2 \ud83d')).toMatch(/lone surrogate \(U\+D83D\) at index 3/)
    expect(stringProblem('firmwareVersion', '\ude00v2')).toMatch(/lone surrogate \(U\+DE00\) at index 0/)
  })

  it('agree on hostile strings: refused exactly when the rule refuses, with the reason naming the first offending character', () => {
    fc.assert(fc.property(hostileString, (s) => {
      const problem = stringProblem('firmwareVersion', s)
      expect(problem !== null).toBe(refusedByRule(s))
      if (problem !== null) {
        const at = control.exec(s) ?? loneSurrogate.exec(s)!
        expect(problem).toContain(`at index ${at.index}`)
      }
    }), { numRuns: 2000 })
  })

  it('checkValue gives a string capability the same verdict, and words range and enum refusals as before', () => {
    const [fw, temp, mode] = resolveCapabilities(['firmwareVersion', 'temperature', { name: 'mode', enum: ['eco'] }])
    expect(checkValue(fw, '3.1.4', 'm')).toBeNull()
    expect(checkValue(fw, '3.1\u007f4', 'm')).toMatch(/control character \(U\+007F\) at index 3/)
    expect(checkValue(temp, 412, 'frostline-f2')).toBe('temperature 412 is out of range -50..150 for model frostline-f2')
    expect(checkValue(temp, 412)).toBe('temperature 412 is out of range -50..150 for this device')
    expect(checkValue(mode, 'turbo')).toBe('mode "turbo" is not one of eco for this device')
    expect(checkValue(mode, 'turbo', 'm')).toBe('mode "turbo" is not one of eco for model m')
  })
})
