import { z } from 'zod'
import { CapabilityDeclaration, CapabilityDeclarationError } from '@trellis/device-sdk'
import { ModelNameTakenError, type Model } from '../../registry/registry.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'

export const ModelDeclaration = z.strictObject({
  name: z.string().trim().min(1).max(100),
  capabilities: z.array(CapabilityDeclaration).min(1).max(64),
  /** The model's payload dialect; omit for canonical (SDK) devices. */
  mapping: z.unknown().optional(),
})
export type ModelDeclaration = z.infer<typeof ModelDeclaration>

export const ModelParams = z.object({ id: z.string().min(1).max(64) })

export function modelView (m: Model) {
  return {
    id: m.id,
    maker: m.makerId,
    name: m.name,
    capabilities: m.resolved,
    mapping: m.mapping,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
  }
}

/** The caller's own model, or 404 (another maker's model is invisible). */
export async function ownModel (api: ApiContext, makerId: string, id: string): Promise<Model> {
  const model = await api.registry.getModel(id)
  if (!model || model.makerId !== makerId) throw errors.notFound('model', id)
  return model
}

export function modelRoutes (api: ApiContext) {
  return [
    route({
      method: 'POST',
      path: '/v1/models',
      summary: 'Declare a device model: its capabilities and, optionally, its payload mapping',
      tags: ['models'],
      access: 'maker',
      body: ModelDeclaration,
      status: 201,
      handler: async ({ body, caller }) => {
        try {
          const model = await api.registry.createModel(caller.subject, { name: body.name, capabilities: body.capabilities, mapping: body.mapping })
          return modelView(model)
        } catch (err) {
          if (err instanceof CapabilityDeclarationError) throw errors.invalidModel(err.message)
          if (err instanceof ModelNameTakenError) throw errors.modelNameTaken(body.name)
          throw err
        }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/models',
      summary: "The maker's models",
      tags: ['models'],
      access: 'maker',
      handler: async ({ caller }) => ({ models: (await api.registry.listModels(caller.subject)).map(modelView) }),
    }),
    route({
      method: 'GET',
      path: '/v1/models/{id}',
      summary: 'One of the maker\'s models',
      tags: ['models'],
      access: 'maker',
      params: ModelParams,
      handler: async ({ params, caller }) => modelView(await ownModel(api, caller.subject, params.id)),
    }),
    route({
      method: 'GET',
      path: '/v1/models/{id}/rejections',
      summary: 'The most recent payloads of this model that were rejected, newest first, with the reason',
      tags: ['models'],
      access: 'maker',
      params: ModelParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(100) }),
      handler: async ({ params, query, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        return { model: model.id, rejections: api.deadLetters.forModel(model.id, query.limit) }
      },
    }),
  ]
}
