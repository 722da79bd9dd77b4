import { z } from 'zod'

/** Milliseconds per unit of a duration such as `30s`, `10m`, `1h`. */
export const durationUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const
export type DurationUnit = keyof typeof durationUnits

const pattern = /^(\d{1,6})(ms|s|m|h|d|w)?$/

/** `250ms`, `2s`, `1h` → milliseconds; a bare number counts in `bareUnit`; null when it is not a duration or its unit is not allowed. */
export function parseDuration (text: string, allowed: readonly DurationUnit[], bareUnit?: DurationUnit): number | null {
  const m = pattern.exec(text)
  if (!m) return null
  const unit = (m[2] ?? bareUnit) as DurationUnit | undefined
  if (!unit || !allowed.includes(unit)) return null
  return Number(m[1]) * durationUnits[unit]
}

/**
 * A zod schema for a duration in a query string, parsed to milliseconds and
 * bounded: `Duration({ units: ['s', 'm'], min: 1000, max: 86_400_000, example: '30s or 10m' })`.
 */
export function Duration (opts: { units: readonly DurationUnit[], bareUnit?: DurationUnit, min?: number, max: number, example: string, name: string }) {
  const min = opts.min ?? 0
  return z.string().max(16).transform((text, ctx) => {
    const ms = parseDuration(text, opts.units, opts.bareUnit)
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `a ${opts.name} such as ${opts.example}` })
      return z.NEVER
    }
    if (ms < min || ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `${opts.name} is between ${formatDuration(min)} and ${formatDuration(opts.max)}` })
      return z.NEVER
    }
    return ms
  }).meta({ description: `a ${opts.name} such as ${opts.example}`, pattern: `^\\d{1,6}(${opts.units.join('|')})${opts.bareUnit ? '?' : ''}$` })
}

/** The largest whole unit: 7d, 30s, 250ms. */
export function formatDuration (ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms >= durationUnits[unit] && ms % durationUnits[unit] === 0) return `${ms / durationUnits[unit]}${unit}`
  }
  return `${ms}ms`
}
