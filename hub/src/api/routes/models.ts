import { z } from 'zod'
import { CapabilityDeclaration, CapabilityDeclarationError, Mapping, MappingError, parseMapping, resolveCapabilities, type ModelCapability } from '@trellis/device-sdk'
import { ModelNameTakenError, type Model } from '../../registry/registry.js'
import { compileModel } from '../../normalize/model.js'
import { mappingQuotaProblem, nestedDeeperThan, QuotaExceeded } from '../../registry/quotas.js'
import { normalizeTelemetry } from '../../normalize/index.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'

/**
 * A mapping as the API takes it: any JSON here, so that a wrong one is
 * answered 422 INVALID_MAPPING naming the field (by parseMapping) rather than
 * a generic 400; the OpenAPI document still shows the mapping's full schema.
 */
const mappingSchema = z.toJSONSchema(Mapping, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
delete mappingSchema.$schema
export const MappingDocument = z.unknown().meta({ ...mappingSchema, description: 'A payload mapping; see docs/makers.md' })

export const ModelDeclaration = z.strictObject({
  name: z.string().trim().min(1).max(100),
  capabilities: z.array(CapabilityDeclaration).min(1).max(64),
  /** The model's payload dialect; omit for canonical (SDK) devices. Invalid mappings get 422 INVALID_MAPPING naming the field. */
  mapping: MappingDocument.optional(),
  /** Seconds a device of this model may stay silent before it is marked offline. Default: the hub's (600). */
  heartbeatSeconds: z.number().int().min(1).max(7 * 24 * 3600).optional(),
})
export type ModelDeclaration = z.infer<typeof ModelDeclaration>

export const ModelParams = z.object({ id: z.string().min(1).max(64) })

export const ModelListQuery = z.object({
  /** Models per page. Default 50, at most 200 (a model's mapping may be up to 64 KiB). */
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** The `next` of the previous page. */
  after: z.string().max(64).optional(),
})

export function modelView (m: Model) {
  return {
    id: m.id,
    maker: m.makerId,
    name: m.name,
    capabilities: m.resolved,
    mapping: m.mapping,
    heartbeatSeconds: m.heartbeatSeconds,
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

/** How deep a sample may nest; a device payload of 16 KiB has no use for more, and JSON.stringify recurses. */
const maxSampleDepth = 64

/** A sample payload: text is sent as it is (key=value, or JSON text), anything else as its JSON. */
const SamplePayload = z.union([z.string().max(16_384), z.record(z.string(), z.unknown()), z.array(z.unknown())])

export const MappingTestRequest = z.strictObject({
  payloads: z.array(SamplePayload).min(1).max(100),
  /** A candidate mapping to try instead of the stored one, before PUT. Default: the model's stored mapping. */
  mapping: MappingDocument.optional(),
})
export type MappingTestRequest = z.infer<typeof MappingTestRequest>

const MappingTestResult = z.union([
  z.object({ ok: z.literal(true), ts: z.string(), readings: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])), problems: z.array(z.string()) }),
  z.object({ ok: z.literal(false), reason: z.string() }),
])

/** Checks a mapping against the model's capabilities; 422 naming the field. */
function validMapping (api: ApiContext, input: unknown, capabilities: readonly ModelCapability[]): void {
  // Before parsing: a mapping of a megabyte costs the parser the better part of a second.
  const overQuota = mappingQuotaProblem(input, api.registry.quotas)
  if (overQuota) throw errors.invalidMapping(overQuota)
  try {
    parseMapping(input, capabilities)
  } catch (err) {
    if (err instanceof MappingError) throw errors.invalidMapping(err.message)
    throw err
  }
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
        let resolved: ModelCapability[]
        try {
          resolved = resolveCapabilities(body.capabilities)
        } catch (err) {
          if (err instanceof CapabilityDeclarationError) throw errors.invalidModel(err.message)
          throw err
        }
        if (body.mapping !== undefined && body.mapping !== null) validMapping(api, body.mapping, resolved)
        try {
          const model = await api.registry.createModel(caller.subject, { name: body.name, capabilities: body.capabilities, mapping: body.mapping, heartbeatSeconds: body.heartbeatSeconds })
          return modelView(model)
        } catch (err) {
          if (err instanceof CapabilityDeclarationError) throw errors.invalidModel(err.message)
          if (err instanceof ModelNameTakenError) throw errors.modelNameTaken(body.name)
          if (err instanceof QuotaExceeded) throw errors.quotaExceeded(err.message)
          throw err
        }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/models',
      summary: "The maker's models in the order declared, a page at a time; pass `next` as `after` for the next page",
      tags: ['models'],
      access: 'maker',
      query: ModelListQuery,
      handler: async ({ caller, query }) => {
        const models = await api.registry.listModels(caller.subject, { limit: query.limit, after: query.after })
        return { models: models.map(modelView), next: models.length === query.limit ? models[models.length - 1].id : null }
      },
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
      method: 'PUT',
      path: '/v1/models/{id}/mapping',
      summary: "Replaces the model's mapping; validated first, live for its devices within a second, no reconnect",
      tags: ['models'],
      access: 'maker',
      params: ModelParams,
      body: MappingDocument,
      handler: async ({ params, body, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        if (body === undefined || body === null) throw errors.badRequest('send the mapping as the body; DELETE /v1/models/{id}/mapping makes the model canonical again')
        validMapping(api, body, model.resolved)
        const updated = await api.registry.setMapping(model.id, body)
        if (!updated) throw errors.notFound('model', params.id)
        return modelView(updated)
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/models/{id}/mapping',
      summary: 'Removes the mapping: devices of the model speak canonical JSON from now on',
      tags: ['models'],
      access: 'maker',
      params: ModelParams,
      handler: async ({ params, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        const updated = await api.registry.setMapping(model.id, null)
        if (!updated) throw errors.notFound('model', params.id)
        return modelView(updated)
      },
    }),
    route({
      method: 'POST',
      path: '/v1/models/{id}/mapping:test',
      summary: 'Dry-runs the stored (or a candidate) mapping on sample payloads: the canonical readings or the reasons, nothing stored',
      tags: ['models'],
      access: 'maker',
      params: ModelParams,
      body: MappingTestRequest,
      response: z.object({ model: z.string(), mapping: z.enum(['stored', 'candidate', 'canonical']), results: z.array(MappingTestResult) }),
      handler: async ({ params, body, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        const candidate = body.mapping !== undefined && body.mapping !== null
        if (candidate) validMapping(api, body.mapping, model.resolved)
        const compiled = compileModel(candidate ? { ...model, mapping: body.mapping } : model)
        const now = Date.now()
        const tooDeep = body.payloads.findIndex((sample) => nestedDeeperThan(sample, maxSampleDepth))
        if (tooDeep !== -1) throw errors.badRequest(`payloads[${tooDeep}] is nested deeper than ${maxSampleDepth} levels, the limit for a sample`)
        const results = body.payloads.map((sample) => {
          const payload = Buffer.from(typeof sample === 'string' ? sample : JSON.stringify(sample))
          const result = normalizeTelemetry(payload, compiled, now)
          if (!result.ok) return { ok: false as const, reason: result.reason }
          const { ts, readings, problems } = result.value
          return { ok: true as const, ts: new Date(ts).toISOString(), readings: Object.fromEntries(readings.map((r) => [r.capability, r.value])), problems }
        })
        return { model: model.id, mapping: candidate ? 'candidate' : compiled.mapping ? 'stored' : 'canonical', results }
      },
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
        return { model: model.id, rejections: api.deadLetters.forModel(model.id, query.limit, model.makerId) }
      },
    }),
  ]
}
