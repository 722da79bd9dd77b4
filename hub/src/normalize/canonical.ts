import { Telemetry, toEpochMs } from '@trellis/device-sdk'
import type { CompiledModel } from './model.js'
import type { NormalizeResult } from './result.js'
import { validateReadings } from './validate.js'

export type { NormalizeResult, NormalizedTelemetry } from './result.js'

/**
 * The envelope as nearly every device sends it: `readings` an object and `ts`
 * absent or epoch ms. Checked by hand on the hot path; anything else (an
 * ISO-8601 `ts`, a malformed envelope) goes through the zod schema, which
 * also words the error.
 */
function plainEnvelope (json: unknown): { ts: number | undefined, readings: Record<string, unknown> } | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null
  const { ts, readings } = json as { ts?: unknown, readings?: unknown }
  if (typeof readings !== 'object' || readings === null || Array.isArray(readings)) return null
  if (ts !== undefined && !(typeof ts === 'number' && Number.isSafeInteger(ts) && ts >= 0)) return null
  return { ts, readings: readings as Record<string, unknown> }
}

/** Canonical telemetry: `{"ts"?, "readings": {capability: value}}`. */
export function normalizeCanonical (payload: Buffer, model: CompiledModel, now: number): NormalizeResult {
  let json: unknown
  try {
    json = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `payload is not JSON: ${(err as Error).message}` }
  }
  let envelope: { ts?: Telemetry['ts'], readings: Record<string, unknown> } | null = plainEnvelope(json)
  if (!envelope) {
    const parsed = Telemetry.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      return { ok: false, reason: `payload is not canonical telemetry: ${issue.path.join('.') || '(root)'}: ${issue.message}` }
    }
    envelope = parsed.data
  }
  let ts = now
  if (envelope.ts !== undefined) {
    try {
      ts = toEpochMs(envelope.ts, now)
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
  }
  const { readings, problems } = validateReadings(envelope.readings, model)
  return { ok: true, value: { ts, readings, problems } }
}
