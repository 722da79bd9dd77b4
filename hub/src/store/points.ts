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
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** Serializes a point as one line of InfluxDB line protocol at millisecond precision. */
export function toLine (p: Point): string {
  const measurement = measurementEscape.test(p.measurement) ? p.measurement.replace(measurementEscape, (c) => `\\${c}`) : p.measurement
  return `${measurement},device=${escapeTag(p.device)},maker=${escapeTag(p.maker)},model=${escapeTag(p.model)} value=${fieldValue(p.value)} ${p.ts}`
}

/** The series of a line written by `toLine`: what a dead letter needs to name its device. */
export function seriesOfLine (line: string): { measurement: string, device: string, maker: string, model: string } | null {
  // Escaped separators only occur in ids the registry never issues; a best effort is enough here.
  const m = /^((?:[^,\\ ]|\\.)+),device=((?:[^,\\ ]|\\.)+),maker=((?:[^,\\ ]|\\.)+),model=((?:[^,\\ ]|\\.)+) /.exec(line)
  if (!m) return null
  const unescape = (s: string) => s.replace(/\\(.)/g, '$1')
  return { measurement: unescape(m[1]), device: unescape(m[2]), maker: unescape(m[3]), model: unescape(m[4]) }
}
