import { z } from 'zod'
import { CapabilityDeclaration, CommandId, Mapping, parseMapping, resolveCapabilities, topics, type ModelCapability } from '@trellis/device-sdk'
import type { Model } from '../../registry/registry.js'
import { compileModel, type CompiledModel } from '../../normalize/model.js'
import { CommandEncodeError, decodeAck, encodeMessages } from '../../normalize/commands.js'
import { CommandRequest, commandProblem } from '../../commands/validate.js'
import { redactPayload } from '../../consent/redact.js'
import { mappingQuotaProblem } from '../../registry/quotas.js'
import { normalizeTelemetry } from '../../normalize/index.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'
import { IdParams } from '../params.js'

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

const ModelView = z.object({
  id: z.string(),
  maker: z.string(),
  name: z.string(),
  capabilities: z.array(z.record(z.string(), z.unknown())),
  mapping: z.unknown(),
  /** The model's own heartbeat allowance, or the hub's default when it declared none. */
  heartbeatSeconds: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
})

export const ModelListQuery = z.object({
  /** Models per page. Default 50, at most 200; a page also stops at 1 MiB of mappings (the maker quota `modelPageBytes`), and `next` continues. */
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** The `next` of the previous page. */
  after: z.string().max(64).optional(),
})

export function modelView (m: Model, defaultHeartbeatSeconds: number) {
  return {
    id: m.id,
    maker: m.makerId,
    name: m.name,
    capabilities: m.resolved,
    mapping: m.mapping,
    heartbeatSeconds: m.heartbeatSeconds ?? defaultHeartbeatSeconds,
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

/** A sample payload: text is sent as it is (key=value, or JSON text), anything else as its JSON. */
const SamplePayload = z.union([z.string().max(16_384), z.record(z.string(), z.unknown()), z.array(z.unknown())])

/** A canonical command to dry-run: an owner's body, with the id the device would see. */
const SampleCommand = CommandRequest.extend({
  /** The command id placed in the device's messages. Default `c-<n>`, n from 1 in the order given. */
  id: CommandId.optional(),
})

export const MappingTestRequest = z.strictObject({
  /** Telemetry samples. Default none. */
  payloads: z.array(SamplePayload).max(100).default([]),
  /** Canonical commands (`{"set": {...}}` or `{"action", "params"}`): answered with the exact device messages. Default none. */
  commands: z.array(SampleCommand).max(20).default([]),
  /** Raw device acks: answered with the status each would give. Default none. */
  acks: z.array(SamplePayload).max(100).default([]),
  /** A candidate mapping to try instead of the stored one, before PUT. Default: the model's stored mapping. */
  mapping: MappingDocument.optional(),
}).refine((b) => b.payloads.length + b.commands.length + b.acks.length > 0, 'give "payloads", "commands" or "acks" to try')
export type MappingTestRequest = z.infer<typeof MappingTestRequest>

const MappingTestResult = z.union([
  z.object({ ok: z.literal(true), ts: z.string(), readings: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])), problems: z.array(z.string()) }),
  z.object({ ok: z.literal(false), reason: z.string() }),
])

const CommandTestResult = z.union([
  z.object({
    ok: z.literal(true),
    id: z.string(),
    /** The messages the device would receive, in order. */
    messages: z.array(z.object({
      /** The id its ack must carry. */
      id: z.string(),
      topic: z.string(),
      /** The bytes as UTF-8 text. */
      payload: z.string(),
      /** The exact bytes, base64. */
      base64: z.string(),
      bytes: z.number(),
    })),
  }),
  z.object({ ok: z.literal(false), reason: z.string() }),
])

const AckTestResult = z.union([
  z.object({ ok: z.literal(true), id: z.string(), status: z.enum(['ok', 'error']), error: z.string().optional(), state: z.record(z.string(), z.union([z.number(), z.boolean(), z.string(), z.null()])).optional() }),
  z.object({ ok: z.literal(false), reason: z.string() }),
])

/** The command as the device would receive it, or why the hub would refuse it. */
function dryRunCommand (model: CompiledModel, sample: z.infer<typeof SampleCommand>, n: number): z.infer<typeof CommandTestResult> {
  const { id = `c-${n}`, ...request } = sample
  const problem = commandProblem(model, request)
  if (problem) return { ok: false, reason: problem }
  try {
    const messages = encodeMessages(model, { id, ...request })
    return { ok: true, id, messages: messages.map((m) => ({ id: m.id, topic: model.mapping?.topics?.commandTopic('{id}', m.key) ?? topics.commands('{id}'), payload: m.payload.toString('utf8'), base64: m.payload.toString('base64'), bytes: m.payload.length })) }
  } catch (err) {
    if (err instanceof CommandEncodeError) return { ok: false, reason: err.message }
    throw err
  }
}

/** Checks a mapping against the model's capabilities; a MappingError becomes 422 naming the field. */
function validMapping (api: ApiContext, input: unknown, capabilities: readonly ModelCapability[]): void {
  // Before parsing: a mapping of a megabyte costs the parser the better part of a second.
  const overQuota = mappingQuotaProblem(input, api.registry.quotas)
  if (overQuota) throw errors.invalidMapping(overQuota)
  parseMapping(input, capabilities)
}

export function modelRoutes (api: ApiContext) {
  const view = (m: Model) => modelView(m, api.defaultHeartbeatSeconds ?? 600)
  // Before anything else: a refused write costs the hub no validation of its mapping.
  const write = (makerId: string) => api.throttle.take('modelWrite', [`maker:${makerId}`])
  return [
    route({
      method: 'POST',
      path: '/v1/models',
      operationId: 'createModel',
      summary: 'Declare a device model: its capabilities and, optionally, its payload mapping',
      tags: ['models'],
      access: 'maker',
      body: ModelDeclaration,
      status: 201,
      response: ModelView,
      errors: ['INVALID_MODEL', 'INVALID_MAPPING', 'MODEL_NAME_TAKEN', 'QUOTA_EXCEEDED'],
      handler: async ({ body, caller }) => {
        write(caller.subject)
        const resolved = resolveCapabilities(body.capabilities)
        if (body.mapping !== undefined && body.mapping !== null) validMapping(api, body.mapping, resolved)
        const model = await api.registry.createModel(caller.subject, { name: body.name, capabilities: body.capabilities, mapping: body.mapping, heartbeatSeconds: body.heartbeatSeconds })
        return view(model)
      },
    }),
    route({
      method: 'GET',
      path: '/v1/models',
      operationId: 'listModels',
      summary: "The maker's models in the order declared, a page at a time (at most `limit` models and 1 MiB of mappings); pass `next` as `after` for the next page",
      tags: ['models'],
      access: 'maker',
      query: ModelListQuery,
      response: z.object({ models: z.array(ModelView), next: z.string().nullable() }),
      handler: async ({ caller, query }) => {
        const { models, next } = await api.registry.listModels(caller.subject, { limit: query.limit, after: query.after })
        return { models: models.map(view), next }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/models/{id}',
      operationId: 'getModel',
      summary: 'One of the maker\'s models',
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      response: ModelView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => view(await ownModel(api, caller.subject, params.id)),
    }),
    route({
      method: 'PUT',
      path: '/v1/models/{id}/mapping',
      operationId: 'putMapping',
      summary: "Replaces the model's mapping; validated first, live for its devices within a second, no reconnect",
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      body: MappingDocument,
      response: ModelView,
      errors: ['NOT_FOUND', 'INVALID_MAPPING'],
      handler: async ({ params, body, caller }) => {
        write(caller.subject)
        const model = await ownModel(api, caller.subject, params.id)
        if (body === undefined || body === null) throw errors.badRequest('send the mapping as the body; DELETE /v1/models/{id}/mapping makes the model canonical again')
        validMapping(api, body, model.resolved)
        const updated = await api.registry.setMapping(model.id, body)
        if (!updated) throw errors.notFound('model', params.id)
        return view(updated)
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/models/{id}/mapping',
      operationId: 'deleteMapping',
      summary: 'Removes the mapping: devices of the model speak canonical JSON from now on',
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      response: ModelView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        const updated = await api.registry.setMapping(model.id, null)
        if (!updated) throw errors.notFound('model', params.id)
        return view(updated)
      },
    }),
    route({
      method: 'POST',
      path: '/v1/models/{id}/mapping:test',
      operationId: 'testMapping',
      summary: 'Dry-runs the stored (or a candidate) mapping: telemetry samples as canonical readings, canonical commands as the exact device messages, device acks as the status each gives; nothing stored or sent',
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      body: MappingTestRequest,
      response: z.object({
        model: z.string(),
        mapping: z.enum(['stored', 'candidate', 'canonical']),
        /** One per telemetry sample, in order. */
        results: z.array(MappingTestResult),
        /** One per command, in order. */
        commands: z.array(CommandTestResult),
        /** One per ack, in order. */
        acks: z.array(AckTestResult),
      }),
      errors: ['NOT_FOUND', 'INVALID_MAPPING'],
      handler: async ({ params, body, caller }) => {
        const candidate = body.mapping !== undefined && body.mapping !== null
        if (candidate) write(caller.subject)
        const model = await ownModel(api, caller.subject, params.id)
        if (candidate) validMapping(api, body.mapping, model.resolved)
        const compiled = compileModel(candidate ? { ...model, mapping: body.mapping } : model)
        const now = Date.now()
        const results = body.payloads.map((sample) => {
          const payload = Buffer.from(typeof sample === 'string' ? sample : JSON.stringify(sample))
          const result = normalizeTelemetry(payload, compiled, now)
          if (!result.ok) return { ok: false as const, reason: result.reason }
          const { ts, readings, problems } = result.value
          return { ok: true as const, ts: new Date(ts).toISOString(), readings: Object.fromEntries(readings.map((r) => [r.capability, r.value])), problems }
        })
        const commands = body.commands.map((sample, i) => dryRunCommand(compiled, sample, i + 1))
        const acks = body.acks.map((sample) => {
          const decoded = decodeAck(compiled, Buffer.from(typeof sample === 'string' ? sample : JSON.stringify(sample)))
          return decoded.ok ? { ok: true as const, ...decoded.ack } : decoded
        })
        return { model: model.id, mapping: candidate ? 'candidate' : compiled.mapping ? 'stored' : 'canonical', results, commands, acks }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/models/{id}/rejections',
      operationId: 'listRejections',
      summary: 'The most recent payloads of this model that were rejected, newest first, with the reason (a claimed device\'s payload shows its shape, not its values)',
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(100) }),
      response: z.object({
        model: z.string(),
        rejections: z.array(z.object({ at: z.string(), deviceId: z.string(), modelId: z.string().nullable(), makerId: z.string().nullable(), topic: z.string(), reason: z.string(), payload: z.string(), bytes: z.number() })),
      }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, query, caller }) => {
        const model = await ownModel(api, caller.subject, params.id)
        const rejections = []
        for (const letter of api.deadLetters.forModel(model.id, query.limit, model.makerId)) {
          // A refused payload of a claimed device still holds the owner's other readings: its shape is the maker's, its values are not.
          const claimed = (await api.directory.get(letter.deviceId))?.ownerId != null
          rejections.push(claimed ? { ...letter, payload: redactPayload(letter.payload) } : letter)
        }
        return { model: model.id, rejections }
      },
    }),
  ]
}
