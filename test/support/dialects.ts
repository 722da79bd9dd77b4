import { resolveCapabilities, type CapabilityDeclaration, type MappingInput } from '@trellis/device-sdk'
import { compileModel, type CompiledModel } from '../../hub/src/normalize/model.js'

/** A model compiled as the hub's directory compiles it, without a registry. */
export function compileDeclaration (model: { name: string, capabilities: CapabilityDeclaration[], mapping?: MappingInput | null }): CompiledModel {
  return compileModel({
    id: `md_${model.name}`,
    makerId: 'mk_test',
    name: model.name,
    resolved: resolveCapabilities(model.capabilities),
    mapping: model.mapping ?? null,
    heartbeatSeconds: null,
  })
}
