import type { ReadingValue } from '@trellis/device-sdk'
import type { Condition, Trigger, Weekday } from './rule.js'
import type { ConditionResult } from './automation-store.js'
import { sunIsUp } from './solar.js'

type ReadingTrigger = Extract<Trigger, { type: 'reading' }>

/** Whether `value` satisfies an above/below/equals comparison. */
export function holds (op: 'above' | 'below' | 'equals' | 'not', threshold: ReadingValue | undefined, value: ReadingValue | undefined): boolean {
  if (value === undefined) return false
  switch (op) {
    case 'above': return typeof value === 'number' && value > (threshold as number)
    case 'below': return typeof value === 'number' && value < (threshold as number)
    case 'equals': return value === threshold
    case 'not': return value !== threshold
  }
}

/**
 * What a new reading means for a reading trigger, given the one before it
 * (undefined when none is known): `fire`; `hold` (the comparison just became
 * true and must last `forSeconds`); `release` (it is false now: a hold in
 * progress ends); or `none`. Edges, not levels: a temperature staying above a
 * threshold fires once, when it crosses.
 */
export function readingEdge (t: ReadingTrigger, previous: ReadingValue | undefined, value: ReadingValue): 'fire' | 'hold' | 'release' | 'none' {
  if (t.op === 'changes') return previous !== undefined && previous !== value ? 'fire' : 'none'
  const now = holds(t.op, t.value, value)
  if (!now) return 'release'
  if (holds(t.op, t.value, previous)) return 'none'
  return t.forSeconds > 0 ? 'hold' : 'fire'
}

const weekdays: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
const clocks = new Map<string, Intl.DateTimeFormat>()

/** The weekday and minute of the day at `at` in `timezone`. */
export function localTime (at: Date, timezone: string): { day: Weekday, minute: number } {
  let format = clocks.get(timezone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    if (clocks.size < 500) clocks.set(timezone, format)
  }
  const parts = format.formatToParts(at)
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? ''
  const day = get('weekday').slice(0, 3).toLowerCase() as Weekday
  return { day: weekdays.includes(day) ? day : 'sun', minute: Number(get('hour')) * 60 + Number(get('minute')) }
}

const minuteOf = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5))

/** Whether one condition holds at `at`, reading devices' values through `valueOf`, with words saying why. */
export function checkCondition (c: Condition, index: number, at: Date, valueOf: (deviceId: string, capability: string) => ReadingValue | undefined): ConditionResult {
  switch (c.type) {
    case 'state': {
      const value = valueOf(c.deviceId, c.capability)
      const met = holds(c.op, c.value, value)
      return { index, type: c.type, met, detail: `${c.deviceId} ${c.capability} is ${value === undefined ? 'unknown' : JSON.stringify(value)}; wanted ${c.op} ${JSON.stringify(c.value)}` }
    }
    case 'time': {
      const { day, minute } = localTime(at, c.timezone)
      const from = c.after === undefined ? 0 : minuteOf(c.after)
      const until = c.before === undefined ? 24 * 60 : minuteOf(c.before)
      const inWindow = from <= until ? minute >= from && minute < until : minute >= from || minute < until
      const onDay = c.days === undefined || c.days.includes(day)
      const clock = `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`
      return { index, type: c.type, met: inWindow && onDay, detail: `${day} ${clock} ${c.timezone}; wanted ${c.after ?? '00:00'} to ${c.before ?? '24:00'}${c.days ? ` on ${c.days.join(', ')}` : ''}` }
    }
    case 'sun': {
      const up = sunIsUp(at, c.location)
      return { index, type: c.type, met: (c.is === 'up') === up, detail: `the sun is ${up ? 'up' : 'down'}; wanted ${c.is}` }
    }
  }
}
