import { z } from 'zod'
import { CommandRequest } from '../../commands/validate.js'
import type { Scheduler } from '../../schedules/scheduler.js'
import { runOutcomes, type Schedule } from '../../schedules/schedule-store.js'
import { maxCronLength } from '../../schedules/cron-expression.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { visibleDevice, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'

export const ScheduleDeclaration = z.strictObject({
  deviceId: z.string().min(1).max(64),
  /**
   * Five fields, or six with seconds first; parsed and bounded by
   * schedules/cron-expression.ts before node-cron sees it, and firing at most
   * once every SchedulerOptions.minIntervalSeconds (default 60 s).
   */
  cron: z.string().trim().min(6).max(maxCronLength),
  /** IANA time zone the expression is read in. Default UTC. */
  timezone: z.string().min(1).max(64).default('UTC'),
  command: CommandRequest,
  /** Create it paused. Default false. */
  paused: z.boolean().default(false),
})

const ScheduleView = z.object({
  id: z.string(),
  deviceId: z.string(),
  cron: z.string(),
  timezone: z.string(),
  command: CommandRequest,
  paused: z.boolean(),
  createdAt: z.string(),
  nextRun: z.string().nullable(),
})

const ScheduleRunView = z.object({
  firedAt: z.string(),
  outcome: z.enum(runOutcomes),
  commandId: z.string().nullable(),
  status: z.string(),
  error: z.string().nullable(),
})

export function scheduleRoutes (api: ApiContext, scheduler: Scheduler) {
  const view = (s: Schedule) => ({
    id: s.id,
    deviceId: s.deviceId,
    cron: s.cron,
    timezone: s.timezone,
    command: s.command,
    paused: s.paused,
    createdAt: s.createdAt,
    nextRun: scheduler.nextRun(s.id)?.toISOString() ?? null,
  })
  const owned = async (ownerId: string, id: string) => {
    const schedule = await scheduler.get(ownerId, id)
    if (!schedule) throw errors.notFound('schedule', id)
    return schedule
  }

  return [
    route({
      method: 'POST',
      path: '/v1/schedules',
      operationId: 'createSchedule',
      summary: 'Schedule a command on a cron expression in a time zone (at most once a minute by default)',
      tags: ['schedules'],
      access: 'owner',
      body: ScheduleDeclaration,
      status: 201,
      response: ScheduleView,
      errors: ['NOT_FOUND', 'INVALID_SCHEDULE', 'SCHEDULE_LIMIT'],
      handler: async ({ body, caller }) => {
        const device = await visibleDevice(api, caller, body.deviceId, ['owner'])
        return view(await scheduler.create(caller.subject, device, body))
      },
    }),
    route({
      method: 'GET',
      path: '/v1/schedules',
      operationId: 'listSchedules',
      summary: "The owner's schedules",
      tags: ['schedules'],
      access: 'owner',
      response: z.object({ schedules: z.array(ScheduleView) }),
      handler: async ({ caller }) => ({ schedules: (await scheduler.list(caller.subject)).map(view) }),
    }),
    route({
      method: 'GET',
      path: '/v1/schedules/{id}',
      operationId: 'getSchedule',
      summary: 'One schedule',
      tags: ['schedules'],
      access: 'owner',
      params: IdParams,
      response: ScheduleView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => view(await owned(caller.subject, params.id)),
    }),
    route({
      method: 'PATCH',
      path: '/v1/schedules/{id}',
      operationId: 'pauseSchedule',
      summary: 'Pause or resume a schedule',
      tags: ['schedules'],
      access: 'owner',
      params: IdParams,
      body: z.strictObject({ paused: z.boolean() }),
      response: ScheduleView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, body, caller }) => {
        const schedule = await scheduler.setPaused(caller.subject, params.id, body.paused)
        if (!schedule) throw errors.notFound('schedule', params.id)
        return view(schedule)
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/schedules/{id}',
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule and its run history',
      tags: ['schedules'],
      access: 'owner',
      params: IdParams,
      status: 204,
      response: z.null(),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        if (!await scheduler.delete(caller.subject, params.id)) throw errors.notFound('schedule', params.id)
        return null
      },
    }),
    route({
      method: 'GET',
      path: '/v1/schedules/{id}/runs',
      operationId: 'listScheduleRuns',
      summary: "A schedule's runs, newest first, each with its command's status",
      tags: ['schedules'],
      access: 'owner',
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }),
      response: z.object({ schedule: z.string(), runs: z.array(ScheduleRunView) }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, query, caller }) => {
        const schedule = await owned(caller.subject, params.id)
        return { schedule: schedule.id, runs: await scheduler.runs(schedule.id, query.limit) }
      },
    }),
  ]
}
