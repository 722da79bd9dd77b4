import { z } from 'zod'
import { errors } from '../errors.js'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'
import { IdParams } from '../params.js'

const Distribution = z.object({ devices: z.number(), mean: z.number(), p10: z.number(), p50: z.number(), p90: z.number() })
const InsightView = z.object({
  model: z.string(),
  day: z.string(),
  minCohort: z.number(),
  provisioned: z.number(),
  claimed: z.number(),
  activeDevices: z.number(),
  onlineShare: z.number().nullable(),
  firmwareVersions: z.record(z.string(), z.number()),
  rejections: z.object({ count: z.number(), perActiveDevice: z.number().nullable() }),
  commands: z.object({ total: z.number(), failed: z.number(), errorRate: z.number().nullable() }),
  capabilities: z.array(z.object({
    capability: z.string(),
    kind: z.enum(['health', 'usage']),
    devices: z.number(),
    distribution: Distribution.nullable(),
    readingsPerDevice: z.number().nullable(),
    withheld: z.string().nullable(),
  })),
})

export function insightRoutes (api: ApiContext) {
  return [
    route({
      method: 'GET',
      path: '/v1/models/{id}/insight',
      operationId: 'getModelInsight',
      summary: "One day of a model's fleet: active devices, online share, firmware, rejection and command-error rates, health spreads; usage only over cohorts of at least k devices",
      tags: ['models'],
      access: 'maker',
      params: IdParams,
      query: z.object({
        /** The UTC day, `YYYY-MM-DD`. Default today. */
        day: z.iso.date().optional(),
      }),
      response: InsightView,
      errors: ['NOT_FOUND', 'BAD_REQUEST', 'RATE_LIMITED', 'STORAGE_UNAVAILABLE'],
      handler: async ({ params, query, caller }) => {
        if (!api.consent) throw errors.notFound('route', 'insight')
        const model = await api.registry.getModel(params.id)
        if (!model || model.makerId !== caller.subject) throw errors.notFound('model', params.id)
        const day = query.day ? Date.parse(`${query.day}T00:00:00Z`) : Math.floor(Date.now() / 86_400_000) * 86_400_000
        if (day > Date.now()) throw errors.badRequest(`${query.day} has not begun yet`)
        // A query per capability over a day of the fleet: it spends from the same budget as history.
        api.throttle.take('history', [caller.tokenId])
        try {
          return await api.consent.insight.forModel(model, day)
        } catch (err) {
          api.log.error({ err: (err as Error).message }, 'insight query failed')
          throw errors.storageUnavailable('the telemetry store did not answer; try again shortly')
        }
      },
    }),
  ]
}
