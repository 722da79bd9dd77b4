import type { CompiledModel } from '../registry/directory.js'
import { normalizeCanonical, type NormalizeResult } from './canonical.js'

export type { NormalizeResult, NormalizedTelemetry } from './canonical.js'
export type { Reading } from './validate.js'
export { compileMapping, CommandEncodeError, type CompiledMapping } from './mapping.js'

/** Turns a device's telemetry payload into canonical readings, by its model's dialect. */
export function normalizeTelemetry (payload: Buffer, model: CompiledModel, now: number): NormalizeResult {
  return model.mapping ? model.mapping.decodeTelemetry(payload, now) : normalizeCanonical(payload, model, now)
}
