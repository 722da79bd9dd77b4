import type { CompiledModel } from './model.js'
import { normalizeCanonical, type NormalizeResult } from './canonical.js'

export type { NormalizeResult, NormalizedTelemetry, Reading } from './result.js'
export { compileMapping, type CompiledMapping } from './mapping.js'
export { CommandEncodeError } from './command-mapping.js'
export { compileModel, type CompiledModel, type ModelCompiler, type ModelSource } from './model.js'

/** Turns a device's telemetry payload into canonical readings, by its model's dialect. */
export function normalizeTelemetry (payload: Buffer, model: CompiledModel, now: number): NormalizeResult {
  return model.mapping ? model.mapping.decodeTelemetry(payload, now) : normalizeCanonical(payload, model, now)
}
