import { describe, expect, it } from 'vitest'
import { bearerToken, safeEqual, sha256 } from '../../../hub/src/crypto.js'
import { Duration, formatDuration, parseDuration } from '../../../hub/src/time/duration.js'
import { jsonDepthExceeds } from '../../../hub/src/api/json-depth.js'

describe('durations', () => {
  it('parse to milliseconds in the allowed units only, a bare number in its unit', () => {
    expect(parseDuration('250ms', ['ms', 's'])).toBe(250)
    expect(parseDuration('2s', ['ms', 's'])).toBe(2000)
    expect(parseDuration('1500', ['ms', 's'], 'ms')).toBe(1500)
    expect(parseDuration('1500', ['ms', 's'])).toBeNull()
    expect(parseDuration('1h', ['ms', 's'])).toBeNull()
    expect(parseDuration('1.5s', ['s'])).toBeNull()
    expect(parseDuration('9999999s', ['s'])).toBeNull()
    expect(formatDuration(7 * 86_400_000)).toBe('1w')
    expect(formatDuration(30_000)).toBe('30s')
  })

  it('are bounded in the query schema, with a reason', () => {
    const Ttl = Duration({ name: 'ttl', units: ['s', 'm', 'h', 'd'], min: 1000, max: 7 * 86_400_000, example: '30s or 1h' })
    expect(Ttl.parse('10m')).toBe(600_000)
    expect(Ttl.safeParse('8d').error?.issues[0].message).toBe('ttl is between 1s and 1w')
    expect(Ttl.safeParse('soon').error?.issues[0].message).toBe('a ttl such as 30s or 1h')
  })
})

describe('bearer tokens and digests', () => {
  it('reads a bearer token, tells a missing header from a malformed one', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def')
    expect(bearerToken('bearer   abc')).toBe('abc')
    expect(bearerToken(undefined)).toBeNull()
    expect(bearerToken('Basic dXNlcjpwYXNz')).toBe('')
    expect(bearerToken('Bearer a b')).toBe('')
  })

  it('compares digests in constant time, unequal lengths unequal', () => {
    expect(safeEqual(sha256('x'), sha256('x'))).toBe(true)
    expect(safeEqual(sha256('x'), sha256('y'))).toBe(false)
    expect(safeEqual(sha256('x'), Buffer.alloc(3))).toBe(false)
  })
})

describe('JSON depth check', () => {
  // A small seeded generator: the same cases on every run.
  let seed = 42
  const random = () => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
  const strings = ['', 'plain', '[[[', ']]}}', 'quote \\" [ inside', '\\\\', '{"a":[1]}']
  const value = (depth: number): unknown => {
    const r = random()
    if (depth <= 0 || r < 0.25) return r < 0.1 ? strings[Math.floor(random() * strings.length)] : Math.floor(r * 100)
    if (r < 0.6) return Array.from({ length: 1 + Math.floor(random() * 3) }, () => value(depth - 1))
    return Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => [strings[i % strings.length] + i, value(depth - 1)]))
  }
  const depthOf = (v: unknown): number => v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf)) : 0

  it('agrees with the real nesting depth on 2,000 generated documents, brackets in strings included', () => {
    for (let i = 0; i < 2000; i++) {
      const v = value(1 + Math.floor(random() * 12))
      const text = JSON.stringify(v)
      const depth = depthOf(v)
      for (const limit of [depth - 1, depth, depth + 1].filter((l) => l >= 0)) expect(jsonDepthExceeds(text, limit), `${text} at limit ${limit}`).toBe(depth > limit)
    }
  })

  it('reads a 1 MiB body in one pass', () => {
    const text = JSON.stringify({ payloads: Array.from({ length: 20_000 }, (_, i) => ({ readings: { temperature: i, note: '[{'.repeat(10) } })) })
    expect(text.length).toBeGreaterThan(1_000_000)
    const start = performance.now()
    expect(jsonDepthExceeds(text, 64)).toBe(false)
    expect(performance.now() - start).toBeLessThan(1000)
  })
})
