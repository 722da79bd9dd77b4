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
