import { Telemetry, toEpochMs } from '@trellis/device-sdk'
import type { CompiledModel } from '../registry/directory.js'
import { validateReadings, type Reading } from './validate.js'

export interface NormalizedTelemetry {
  /** epoch ms: the device's timestamp, or arrival time. */
  ts: number
  readings: Reading[]
  problems: string[]
}

export type NormalizeResult = { ok: true, value: NormalizedTelemetry } | { ok: false, reason: string }

/** Canonical telemetry: `{"ts"?, "readings": {capability: value}}`. */
export function normalizeCanonical (payload: Buffer, model: CompiledModel, now: number): NormalizeResult {
  let json: unknown
  try {
    json = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `payload is not JSON: ${(err as Error).message}` }
  }
  const parsed = Telemetry.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return { ok: false, reason: `payload is not canonical telemetry: ${issue.path.join('.') || '(root)'}: ${issue.message}` }
  }
  let ts = now
  if (parsed.data.ts !== undefined) {
    try {
      ts = toEpochMs(parsed.data.ts, now)
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
  }
  const { readings, problems } = validateReadings(parsed.data.readings, model)
  return { ok: true, value: { ts, readings, problems } }
}
