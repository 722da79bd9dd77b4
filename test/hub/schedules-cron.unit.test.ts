import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import cron from 'node-cron'
import { parseCron, maxCronLength } from '../../hub/src/schedules/cron-expression.js'

const sorted = (values: unknown[]) => [...new Set(values.map(Number))].sort((a, b) => a - b)

/** node-cron's own reading of an expression the parser accepted; only ever called on accepted ones. */
function nodeCronFields (expression: string) {
  const v = cron.validateDetailed(expression)
  if (!v.valid) return null
  const f = v.fields!
  return { second: sorted(f.second), minute: sorted(f.minute), hour: sorted(f.hour), dayOfMonth: sorted(f.dayOfMonth), month: sorted(f.month), dayOfWeek: sorted(f.dayOfWeek) }
}

/** The shortest gap and most firings in 60 s, by listing every instant of a day: slow, plainly right. */
function spacingByListing (f: { second: number[], minute: number[], hour: number[] }): [number, number] {
  const times: number[] = []
  for (const h of f.hour) for (const m of f.minute) for (const s of f.second) times.push(h * 3600 + m * 60 + s)
  let gap = 86_400 - times[times.length - 1] + times[0]
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i] - times[i - 1])
  let most = 0
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j - i < times.length && times[j % times.length] + (j >= times.length ? 86_400 : 0) - times[i] < 60) j++
    most = Math.max(most, j - i)
  }
  return [gap, most]
}

/** Pieces of cron fields, good and hostile: small numbers, names, huge numbers, odd steps. */
const number = fc.oneof(
  fc.integer({ min: 0, max: 99 }).map(String),
  fc.constantFrom('0', '7', '12', '23', '24', '31', '32', '59', '60', '00', '07', '4294967295', '10000000', '99999999999999999999', '-1'),
  fc.constantFrom('jan', 'DEC', 'may', 'september', 'mon', 'Sun', 'saturday', 'thursday', 'L', 'W', '5L', '1#2', '?'),
)
const item = fc.oneof(
  fc.constant('*'),
  number,
  fc.tuple(number, number).map(([a, b]) => `${a}-${b}`),
  fc.tuple(number, fc.integer({ min: 0, max: 100 })).map(([a, s]) => `*/${s}`.replace('*', a === '?' ? '?' : '*')),
  fc.tuple(number, number, fc.oneof(fc.integer({ min: 0, max: 70 }).map(String), fc.constant('4294967295'))).map(([a, b, s]) => `${a}-${b}/${s}`),
  fc.tuple(number, fc.integer({ min: 1, max: 30 })).map(([a, s]) => `${a}/${s}`),
)
const field = fc.oneof({ weight: 5, arbitrary: fc.array(item, { minLength: 1, maxLength: 4 }).map((items) => items.join(',')) }, { weight: 1, arbitrary: fc.constant('?') })
const expression = fc.oneof(
  { weight: 8, arbitrary: fc.array(field, { minLength: 4, maxLength: 7 }).map((fields) => fields.join(' ')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 130 }) },
  { weight: 1, arbitrary: fc.constantFrom('@hourly', '@DAILY', ' @weekly ', '@yearly', '@reboot', '0  23   * * *', '0\t23 * * *') },
)

describe('cron expressions, bounded before node-cron', () => {
  it('refuses a range built to explode node-cron, naming the field, in well under a millisecond', () => {
    for (const [bomb, field] of [['0-4294967295 * * * *', 'minute'], ['0-10000000 * * * *', 'minute'], ['* * 1-99999999 * *', 'day of month'], ['0 0 * * 0-4294967295/1', 'day of week'], ['*/4294967295 * * * * *', 'second']] as const) {
      const t0 = performance.now()
      const parsed = parseCron(bomb)
      expect(performance.now() - t0).toBeLessThan(50)
      expect(parsed).toMatchObject({ ok: false, field })
    }
  })

  it('says which field is wrong and how', () => {
    expect(parseCron('61 * * * *')).toEqual({ ok: false, field: 'minute', problem: 'minute "61" has "61", which is not a number from 0 to 59' })
    expect(parseCron('* * * * * * *')).toMatchObject({ ok: false, field: 'expression', problem: expect.stringContaining('has 7 fields') })
    expect(parseCron('0 0 31 2 *')).toMatchObject({ ok: false, field: 'day of month' })
    expect(parseCron('0 0 * * 1/2')).toMatchObject({ ok: false, field: 'day of week', problem: expect.stringContaining('write a range') })
    expect(parseCron('*/0 * * * *')).toMatchObject({ ok: false, field: 'minute', problem: expect.stringContaining('steps go from 1 to 60') })
    expect(parseCron(`0 ${'1,'.repeat(24)}1 * * *`)).toMatchObject({ ok: false, field: 'hour', problem: expect.stringContaining('at most 24') })
    expect(parseCron('0 '.repeat(70))).toMatchObject({ ok: false, field: 'expression', problem: `expression is 140 characters long; at most ${maxCronLength}` })
  })

  it('reads how often an expression fires: its shortest gap and most firings in a minute', () => {
    const spacing = (e: string) => { const p = parseCron(e); return p.ok ? [p.schedule.minIntervalSeconds, p.schedule.maxPerMinute] : p.problem }
    expect(spacing('* * * * * *')).toEqual([1, 60])
    expect(spacing('*/5 * * * * *')).toEqual([5, 12])
    expect(spacing('0,1,2 * * * * *')).toEqual([1, 3])
    expect(spacing('* * * * *')).toEqual([60, 1])
    expect(spacing('*/15 * * * *')).toEqual([900, 1])
    expect(spacing('0 23 * * *')).toEqual([86_400, 1])
    expect(spacing('0 22-2 * * *')).toEqual([3600, 1])
    // Across midnight: 23:59:30 and 00:00:10 are 40 s apart.
    expect(spacing('30 59 23 * * *')).toEqual([86_400, 1])
    expect(spacing('10,30 0,59 0,23 * * *')).toEqual([20, 2])
    expect(spacing('@hourly')).toEqual([3600, 1])
  })

  it('reads names, wrapping ranges and Sunday as 7 as node-cron does', () => {
    for (const e of ['0 0 * jan-mar mon-fri', '0 0 * * 7-3', '0 0 * * 5-7', '0 0 * * 0-7/2', '0 22-2/2 * * *', '0 0 ? * sun', '0 0 1 * ?', '@weekly', '0 0 * * SUNDAY,saturday']) {
      const parsed = parseCron(e)
      expect(parsed.ok, e).toBe(true)
      if (parsed.ok) expect(parsed.schedule.fields, e).toEqual(nodeCronFields(e))
    }
  })

  it('fuzzed: every expression is refused quickly, or accepted and read the same by node-cron', () => {
    let accepted = 0
    fc.assert(fc.property(expression, (e) => {
      const t0 = performance.now()
      const parsed = parseCron(e)
      const ms = performance.now() - t0
      expect(ms).toBeLessThan(100)
      if (parsed.ok) {
        accepted++
        expect(nodeCronFields(e), e).toEqual(parsed.schedule.fields)
        if (accepted % 10 === 0) expect([parsed.schedule.minIntervalSeconds, parsed.schedule.maxPerMinute], e).toEqual(spacingByListing(parsed.schedule.fields))
      } else {
        expect(parsed.problem.startsWith(parsed.field), e).toBe(true)
      }
    }), { numRuns: 3000 })
    // The generator must reach both sides, or the property says nothing.
    expect(accepted).toBeGreaterThan(150)
  })
})
