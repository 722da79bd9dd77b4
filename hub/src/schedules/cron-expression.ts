/**
 * Cron expressions, parsed and bounded here before node-cron sees them.
 *
 * node-cron expands every range into a list of numbers before it checks the
 * bounds, so `0-4294967295 * * * *` builds a four-billion-entry string and
 * kills the process. This parser checks every number's digits and bounds
 * first, and only then expands (at most 60 values a field). It accepts a
 * subset of what node-cron accepts, and every expression it accepts node-cron
 * accepts too (test/hub/schedules-cron.unit.test.ts fuzzes both):
 *
 * - five fields (minute hour day-of-month month day-of-week), or six with seconds first;
 * - in a field: a comma list of `*`, `N`, `A-B`, `* /S` or `A-B/S` (no space) items;
 *   `A-B` with A > B wraps (`22-2` in hours: 22, 23, 0, 1, 2);
 * - month names (`jan`, `january`) and day names (`mon`, `monday`); day of week 0-7, 7 is Sunday;
 * - `?` for a whole day-of-month or day-of-week field;
 * - the nicknames `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
 *
 * Not accepted: Quartz's `L`, `W` and `#`.
 */

import cron from 'node-cron'

/** Longest expression accepted, in characters. */
export const maxCronLength = 120

export interface CronFields {
  second: number[]
  minute: number[]
  hour: number[]
  dayOfMonth: number[]
  month: number[]
  /** 0-6, Sunday is 0. */
  dayOfWeek: number[]
}

export interface CronSchedule {
  fields: CronFields
  /** The shortest time between two firings, in seconds, read on a day's clock (a daylight-saving jump can shorten it once). */
  minIntervalSeconds: number
  /** The most firings in any 60 seconds. */
  maxPerMinute: number
}

export type CronParse = { ok: true, schedule: CronSchedule } | { ok: false, field: string, problem: string }

interface FieldSpec { name: keyof CronFields, label: string, min: number, max: number, names?: Record<string, number> }

const monthNames = nameTable(['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'], 1)
const dayNames = nameTable(['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'], 0)

const specs: FieldSpec[] = [
  { name: 'second', label: 'second', min: 0, max: 59 },
  { name: 'minute', label: 'minute', min: 0, max: 59 },
  { name: 'hour', label: 'hour', min: 0, max: 23 },
  { name: 'dayOfMonth', label: 'day of month', min: 1, max: 31 },
  { name: 'month', label: 'month', min: 1, max: 12, names: monthNames },
  { name: 'dayOfWeek', label: 'day of week', min: 0, max: 7, names: dayNames },
]

const nicknames: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

const daysInMonth = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Parses and bounds a cron expression; a refusal names the field and says what is wrong. */
export function parseCron (expression: string): CronParse {
  if (expression.length > maxCronLength) return refuse('expression', `is ${expression.length} characters long; at most ${maxCronLength}`)
  const resolved = nicknames[expression.trim().toLowerCase()] ?? expression
  if (!/^[A-Za-z0-9*/,?\- ]*$/.test(resolved)) return refuse('expression', 'may hold only digits, letters of month and day names, spaces and * / , - ?')
  const raw = resolved.trim().split(/ +/)
  if (raw.length !== 5 && raw.length !== 6) return refuse('expression', `has ${raw.length} fields; use five (minute hour day-of-month month day-of-week) or six with seconds first`)
  const texts = raw.length === 5 ? ['0', ...raw] : raw
  const fields = {} as CronFields
  for (let i = 0; i < specs.length; i++) {
    const values = parseField(texts[i], specs[i])
    if (typeof values === 'string') return refuse(specs[i].label, `"${texts[i]}" ${values}`)
    fields[specs[i].name] = values
  }
  if (!fields.month.some((m) => fields.dayOfMonth.some((d) => d <= daysInMonth[m]))) {
    return refuse('day of month', `"${texts[3]}" never occurs in month "${texts[4]}"`)
  }
  return { ok: true, schedule: { fields, ...spacing(fields) } }
}

function refuse (field: string, problem: string): CronParse {
  return { ok: false, field, problem: `${field} ${problem}` }
}

/** The field's values, sorted and distinct, or what is wrong with it. */
function parseField (text: string, spec: FieldSpec): number[] | string {
  const allowsAny = spec.name === 'dayOfMonth' || spec.name === 'dayOfWeek'
  if (text === '?') return allowsAny ? range(spec, spec.min, spec.name === 'dayOfWeek' ? 6 : spec.max, 1) : 'may not be "?"; only day of month and day of week may'
  const items = text.split(',')
  const size = spec.max - spec.min + 1
  if (items.length > size) return `lists ${items.length} items; at most ${size}`
  const seen = new Set<number>()
  for (const item of items) {
    const match = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/([0-9]+))?$/.exec(item)
    if (!match) return `has an item "${item}" that is none of *, N, A-B, */S, A-B/S`
    const [, base, stepText] = match
    if (stepText !== undefined && !base.includes('-') && base !== '*') return `has a step "${item}" after a single value; write a range, e.g. "${base}-${spec.max}/${stepText}"`
    let step = 1
    if (stepText !== undefined) {
      step = stepText.length <= 2 ? Number(stepText) : Infinity
      if (!(step >= 1 && step <= size)) return `has a step of ${stepText}; steps go from 1 to ${size}`
    }
    let first = spec.min
    let last = spec.name === 'dayOfWeek' ? 6 : spec.max
    if (base !== '*') {
      const ends = base.split('-')
      const values = ends.map((v) => value(v, spec))
      for (let i = 0; i < values.length; i++) {
        if (values[i] === null) return `has "${ends[i]}", which is not ${spec.names ? 'a number or name' : 'a number'} from ${spec.min} to ${spec.max}`
      }
      first = values[0]!
      last = values[values.length - 1]!
    }
    // `7-3` is Sunday to Wednesday: read 7 as 0 where it starts a range that wraps.
    if (spec.name === 'dayOfWeek' && base.includes('-') && first === 7 && last < 7) first = 0
    for (const v of range(spec, first, last, step)) seen.add(spec.name === 'dayOfWeek' && v === 7 ? 0 : v)
  }
  return [...seen].sort((a, b) => a - b)
}

/** A number (at most two digits) or a name within the field's bounds, or null. */
function value (text: string, spec: FieldSpec): number | null {
  let n: number | undefined
  if (/^[0-9]{1,2}$/.test(text)) n = Number(text)
  else n = spec.names?.[text.toLowerCase()]
  return n !== undefined && n >= spec.min && n <= spec.max ? n : null
}

/** first..last by step; past the end it wraps to the start, as node-cron reads `22-2`. */
function range (spec: FieldSpec, first: number, last: number, step: number): number[] {
  const out: number[] = []
  if (first <= last) {
    for (let v = first; v <= last; v += step) out.push(v)
    return out
  }
  // Day of week wraps over 0-6, like node-cron.
  const max = spec.name === 'dayOfWeek' ? 6 : spec.max
  const size = max - spec.min + 1
  const span = (((last - first) % size) + size) % size
  for (let offset = 0; offset <= span; offset += step) out.push(first + offset > max ? first + offset - size : first + offset)
  return out
}

/**
 * The shortest gap between firings on a day's clock, and the most firings in
 * any 60 s, from hours, minutes and seconds, without listing a day's instants.
 * Any 60 s window holds the tail of one minute and the head of the next, so at
 * most one minute's worth of seconds: the most in a minute is the seconds
 * field's size. Gaps are those within a minute, and those from the last second
 * of one firing minute to the first of the next.
 */
function spacing (fields: CronFields): { minIntervalSeconds: number, maxPerMinute: number } {
  const seconds = fields.second
  let minGap = Infinity
  for (let i = 1; i < seconds.length; i++) minGap = Math.min(minGap, seconds[i] - seconds[i - 1])
  // Firing minutes of the day, in order (at most 1440). The step across midnight counts as if the next day fired too:
  // a bound, never more than the truth.
  const minutes: number[] = []
  for (const h of fields.hour) for (const m of fields.minute) minutes.push(h * 60 + m)
  let minuteStep = 1440 - minutes[minutes.length - 1] + minutes[0]
  for (let i = 1; i < minutes.length; i++) minuteStep = Math.min(minuteStep, minutes[i] - minutes[i - 1])
  minGap = Math.min(minGap, minuteStep * 60 - (seconds[seconds.length - 1] - seconds[0]))
  return { minIntervalSeconds: minGap, maxPerMinute: seconds.length }
}

function nameTable (names: string[], base: number): Record<string, number> {
  const table: Record<string, number> = {}
  names.forEach((name, i) => { table[name] = base + i; table[name.slice(0, 3)] = base + i })
  return table
}

/** Why a cron expression and time zone cannot be scheduled, or null. The expression is bounded here before node-cron reads it. */
export function scheduleProblem (expression: string, timezone: string): string | null {
  const parsed = parseCron(expression)
  if (!parsed.ok) return `cron "${expression}" is not valid (${parsed.problem}); use five fields, or six with seconds first, e.g. "0 23 * * *"`
  // The parser accepts only what node-cron accepts; asking node-cron too costs little once the ranges are bounded.
  const validation = cron.validateDetailed(expression)
  if (!validation.valid) {
    const detail = validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')
    return `cron "${expression}" is not valid (${detail}); use five fields, or six with seconds first, e.g. "0 23 * * *"`
  }
  if (!validZones.has(timezone)) {
    let canonical: string
    try {
      canonical = new Intl.DateTimeFormat('en', { timeZone: timezone }).resolvedOptions().timeZone
    } catch {
      return `time zone "${timezone}" is not an IANA zone such as Europe/Berlin or UTC`
    }
    // Building a formatter costs more than the rest of the check. Only zones spelled as ICU spells them are kept
    // (a few hundred at most): any casing of a name is valid too, and those must not grow the set.
    if (canonical === timezone) validZones.add(timezone)
  }
  return null
}

const validZones = new Set<string>()
