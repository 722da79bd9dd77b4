import type { ReadingValue } from '@trellis/device-sdk'

/** One reading on its way to InfluxDB: measurement = capability, tags device/model/maker, field `value`. */
export interface Point {
  measurement: string
  device: string
  model: string
  maker: string
  value: ReadingValue
  /** epoch ms */
  ts: number
}

// Tag keys sort as device < maker < model, InfluxDB's own order, so it need not re-sort.
const tagEscape = /[,= ]/g
const measurementEscape = /[, ]/g

function escapeTag (s: string): string {
  return tagEscape.test(s) ? s.replace(tagEscape, (c) => `\\${c}`) : s
}

function fieldValue (value: ReadingValue): string {
  if (typeof value === 'number') {
    // Always a float: `21` and `21.5` must share a field type.
    return Number.isInteger(value) ? `${value}.0` : String(value)
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  return `"${fieldEscape.test(value) ? value.replace(fieldEscapeAll, escapeFieldChar) : value}"`
}

// Line protocol escapes only \ and " in a string field and has no escape for a
// newline, which ends the line. The contract refuses control characters; one
// that gets here anyway is written as the visible text \uXXXX, never raw.
const fieldEscape = /[\\"\u0000-\u001f\u007f-\u009f]/
const fieldEscapeAll = new RegExp(fieldEscape.source, 'g')
function escapeFieldChar (c: string): string {
  return c === '\\' || c === '"' ? `\\${c}` : `\\\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/**
 * A device's series key (`measurement` aside) is the same on every point, so it
 * is escaped once per device, and again only if its model or maker changes.
 */
const seriesTags = new Map<string, { maker: string, model: string, tags: string }>()
const measurements = new Map<string, string>()
/** Devices (and measurements) remembered at most; beyond, the cache starts over. */
const maxCached = 1_000_000

/** Whose a point is: its tags. */
export interface Series {
  device: string
  model: string
  maker: string
}

function tagsOf (p: Series): string {
  const cached = seriesTags.get(p.device)
  if (cached && cached.maker === p.maker && cached.model === p.model) return cached.tags
  // Joined, not a template literal: V8 keeps a template's result as a rope of six cons strings (384 bytes
  // a device, held as long as the device is cached), join makes one flat string.
  const tags = [',device=', escapeTag(p.device), ',maker=', escapeTag(p.maker), ',model=', escapeTag(p.model), ' value='].join('')
  if (seriesTags.size >= maxCached) seriesTags.clear()
  seriesTags.set(p.device, { maker: p.maker, model: p.model, tags })
  return tags
}

function measurementOf (name: string): string {
  let escaped = measurements.get(name)
  if (escaped === undefined) {
    escaped = measurementEscape.test(name) ? name.replace(measurementEscape, (c) => `\\${c}`) : name
    if (measurements.size >= maxCached) measurements.clear()
    measurements.set(name, escaped)
  }
  return escaped
}

/** Serializes a point as one line of InfluxDB line protocol at millisecond precision. */
export function toLine (p: Point): string {
  return lineOf(p.measurement, p, p.value, p.ts)
}

/** The line of one value of `series`: `toLine` without a point object. */
export function lineOf (measurement: string, series: Series, value: ReadingValue, ts: number): string {
  return `${measurementOf(measurement)}${tagsOf(series)}${fieldValue(value)} ${ts}`
}

/** The series of a line written by `toLine`: what a dead letter needs to name its device. */
export function seriesOfLine (line: string): { measurement: string, device: string, maker: string, model: string } | null {
  // Escaped separators only occur in ids the registry never issues; a best effort is enough here.
  const m = /^((?:[^,\\ ]|\\.)+),device=((?:[^,\\ ]|\\.)+),maker=((?:[^,\\ ]|\\.)+),model=((?:[^,\\ ]|\\.)+) /.exec(line)
  if (!m) return null
  const unescape = (s: string) => s.replace(/\\(.)/g, '$1')
  return { measurement: unescape(m[1]), device: unescape(m[2]), maker: unescape(m[3]), model: unescape(m[4]) }
}
