import type { CompiledModel } from './model.js'
import { normalizeCanonical, type NormalizeResult } from './canonical.js'

export type { NormalizeResult, NormalizedTelemetry, Reading } from './result.js'
export { compileMapping, type CompiledMapping } from './mapping.js'
export { CommandEncodeError } from './command-mapping.js'
export { compileModel, type CompiledModel, type ModelCompiler, type ModelSource } from './model.js'

/** Turns a device's telemetry payload into canonical readings, by its model's dialect; `zone`: the device's own time zone, if any. */
export function normalizeTelemetry (payload: Buffer, model: CompiledModel, now: number, zone?: string | null): NormalizeResult {
  return model.mapping ? model.mapping.decodeTelemetry(payload, now, zone) : normalizeCanonical(payload, model, now)
}
