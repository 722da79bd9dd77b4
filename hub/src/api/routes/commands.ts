import { z } from 'zod'
import type { CommandRecord } from '../../commands/command-log.js'
import type { CommandService } from '../../commands/service.js'
import { CommandRequest } from '../../commands/validate.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { visibleDevice, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'
import { Duration } from '../../time/duration.js'

const CommandParams = IdParams.extend({ cid: z.string().min(1).max(64) })

/** `250ms`, `2s` or a bare number of milliseconds. */
const WaitDuration = Duration({ name: 'wait', units: ['ms', 's'], bareUnit: 'ms', max: 30_000, example: '0, 500ms or 2s' })

const TtlDuration = Duration({ name: 'ttl', units: ['s', 'm', 'h', 'd'], min: 1000, max: 7 * 86_400_000, example: '30s, 10m, 1h or 1d' })

export const SendQuery = z.object({
  /** How long to wait for the device's ack. Default 5s; 0 answers at once with `pending`. */
  wait: WaitDuration.optional(),
  /** Queue the command when the device is offline and deliver it when it is back. Default false. */
  queue: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** How long a queued command waits for its device. Default 1h. */
  ttl: TtlDuration.optional(),
})

export const CommandView = z.object({
  id: z.string(),
  device: z.string(),
  status: z.enum(['pending', 'ok', 'error', 'timeout']),
  set: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional(),
  action: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  origin: z.enum(['api', 'schedule', 'automation']),
  error: z.string().optional(),
  state: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional(),
  createdAt: z.string(),
  sentAt: z.string().nullable(),
  ackedAt: z.string().optional(),
  queuedUntil: z.string().optional(),
})

const iso = (ms: number) => new Date(ms).toISOString()

export function commandView (c: CommandRecord): z.infer<typeof CommandView> {
  return {
    id: c.id,
    device: c.deviceId,
    status: c.status,
    ...c.request,
    origin: c.origin,
    ...(c.error !== null && { error: c.error }),
    ...(c.state !== null && { state: c.state }),
    createdAt: iso(c.createdAt),
    sentAt: c.sentAt === null ? null : iso(c.sentAt),
    ...(c.ackedAt !== null && { ackedAt: iso(c.ackedAt) }),
    ...(c.queuedUntil !== null && c.sentAt === null && { queuedUntil: iso(c.queuedUntil) }),
  }
}

/** HTTP status of a command answer: settled 200, still pending 202, no ack in time 504. */
export function commandHttpStatus (c: CommandRecord): number {
  return c.status === 'pending' ? 202 : c.status === 'timeout' ? 504 : 200
}

export function commandRoutes (api: ApiContext, commands: CommandService) {
  return [
    route({
      method: 'POST',
      path: '/v1/devices/{id}/commands',
      operationId: 'sendCommand',
      summary: 'Send a command (set capabilities or invoke an action) and wait for the ack: 200 ok/error, 202 pending, 504 timeout',
      tags: ['commands'],
      access: 'owner',
      params: IdParams,
      query: SendQuery,
      body: CommandRequest,
      response: CommandView,
      statuses: [202, 504],
      errors: ['NOT_FOUND', 'INVALID_COMMAND', 'DEVICE_OFFLINE', 'DEVICE_BUSY'],
      handler: async ({ params, query, body, caller, reply }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner'])
        const record = await commands.send(ctx, caller.subject, body, { waitMs: query.wait, queue: query.queue, queueTtlMs: query.ttl })
        // The status depends on the outcome.
        reply.code(commandHttpStatus(record)).header('location', `/v1/devices/${ctx.id}/commands/${record.id}`)
        return commandView(record)
      },
    }),
    route({
      method: 'GET',
      path: '/v1/devices/{id}/commands',
      operationId: 'listCommands',
      summary: "The device's recent commands, newest first",
      tags: ['commands'],
      access: 'owner',
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }),
      response: z.object({ commands: z.array(CommandView) }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, query, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner'])
        return { commands: (await commands.recent(ctx, query.limit)).map(commandView) }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/devices/{id}/commands/{cid}',
      operationId: 'getCommand',
      summary: "One command's status",
      tags: ['commands'],
      access: 'owner',
      params: CommandParams,
      response: CommandView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner'])
        const record = await commands.get(ctx, params.cid)
        if (!record) throw errors.notFound('command', params.cid)
        return commandView(record)
      },
    }),
  ]
}
