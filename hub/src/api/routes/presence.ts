import { z } from 'zod'
import { uptime, type PresenceMonitor } from '../../presence/presence.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { visibleDevice, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'

export const PresenceQuery = z.object({
  /** ISO-8601; default one day before `to`. */
  from: z.iso.datetime({ offset: true }).optional(),
  /** ISO-8601; default now. */
  to: z.iso.datetime({ offset: true }).optional(),
})

export function presenceRoutes (api: ApiContext, presence: PresenceMonitor) {
  return [
    route({
      method: 'GET',
      path: '/v1/devices/{id}/presence',
      operationId: 'getPresence',
      summary: "The device's online/offline changes over a period and its uptime",
      tags: ['devices'],
      access: 'owner',
      params: IdParams,
      query: PresenceQuery,
      response: z.object({
        device: z.string(),
        online: z.boolean(),
        from: z.string(),
        to: z.string(),
        uptime: z.number(),
        onlineSeconds: z.number(),
        changes: z.array(z.object({ ts: z.string(), online: z.boolean() })),
      }),
      errors: ['NOT_FOUND', 'BAD_REQUEST', 'RATE_LIMITED', 'STORAGE_UNAVAILABLE'],
      handler: async ({ params, query, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner'])
        api.throttle.take('history', [caller.tokenId])
        const to = query.to ? new Date(query.to) : new Date()
        const from = query.from ? new Date(query.from) : new Date(to.getTime() - 86_400_000)
        if (from > to) throw errors.badRequest('from is after to')
        let history
        try {
          history = await presence.history(ctx.id, from, to)
        } catch (err) {
          api.log.error({ err }, 'presence query failed')
          throw errors.storageUnavailable('the telemetry store did not answer; try again shortly')
        }
        const { onlineMs, ratio } = uptime(history.onlineAtStart, history.changes, from.getTime(), to.getTime())
        return {
          device: ctx.id,
          online: api.state.get(ctx.id)?.online ?? false,
          from: from.toISOString(),
          to: to.toISOString(),
          uptime: Math.round(ratio * 1e6) / 1e6,
          onlineSeconds: Math.round(onlineMs / 1000),
          changes: history.changes,
        }
      },
    }),
  ]
}
