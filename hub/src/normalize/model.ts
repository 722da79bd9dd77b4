import { MappingError, parseMapping, type CapabilityName, type ModelCapability } from '@trellis/device-sdk'
import { compileMapping, invalidMapping, type CompiledMapping } from './mapping.js'

/** What compiling needs of a stored model; the registry's `Model` has it. */
export interface ModelSource {
  readonly id: string
  readonly name: string
  readonly makerId: string
  /** Capabilities resolved against the catalogue. */
  readonly resolved: readonly ModelCapability[]
  /** The payload mapping as stored; null for canonical (SDK) models. */
  readonly mapping: unknown
  readonly heartbeatSeconds: number | null
}

/** A model ready for the hot path: capabilities by name, mapping compiled once. */
export interface CompiledModel {
  readonly id: string
  readonly name: string
  readonly makerId: string
  readonly capabilities: ReadonlyMap<CapabilityName, ModelCapability>
  /** The model's dialect, compiled; null for canonical (SDK) models. */
  readonly mapping: CompiledMapping | null
  /** The model's heartbeat allowance in ms; null for the hub's default. */
  readonly heartbeatMs: number | null
}

export type ModelCompiler = (model: ModelSource) => CompiledModel

/**
 * Compiles the model's mapping once, so the hot path never re-reads its JSON.
 * The API validated the mapping before storing it; a stored one that no
 * longer parses still lets devices connect, and their payloads are
 * dead-lettered with the reason.
 */
export const compileModel: ModelCompiler = (model) => {
  const capabilities = new Map(model.resolved.map((c) => [c.name, c]))
  let mapping: CompiledMapping | null = null
  if (model.mapping !== null) {
    try {
      mapping = compileMapping(parseMapping(model.mapping, model.resolved), model.name)
    } catch (err) {
      if (!(err instanceof MappingError)) throw err
      mapping = invalidMapping(model.id, model.name, err.message)
    }
  }
  return { id: model.id, name: model.name, makerId: model.makerId, capabilities, mapping, heartbeatMs: model.heartbeatSeconds === null ? null : model.heartbeatSeconds * 1000 }
}
