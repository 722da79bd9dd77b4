import { z } from 'zod'
import { ReadingValue } from '@trellis/device-sdk'
import type { Automations } from '../../automations/automations.js'
import { DryRunRefused, defaultDryRunLimits, dryRun } from '../../automations/dry-run.js'
import { Action, AutomationDeclaration, Condition, Trigger, devicesOf, type Automation } from '../../automations/rule.js'
import type { DeviceContext } from '../../registry/directory.js'
import { CommandRequest } from '../../commands/validate.js'
import { QueryRefused } from '../../store/telemetry.js'
import { errors } from '../errors.js'
import { route, type Caller } from '../route.js'
import { visibleDevice, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'

const AutomationView = z.object({
  id: z.string(),
  name: z.string(),
  trigger: Trigger,
  conditions: z.array(Condition),
  actions: z.array(Action),
  cooldownSeconds: z.number(),
  enabled: z.boolean(),
  createdAt: z.string(),
  /** Why the rule does not fire now (disabled, a device no longer yours), or null. */
  suspended: z.string().nullable(),
})

const ConditionResultView = z.object({ index: z.number(), type: z.string(), met: z.boolean(), detail: z.string() })

const RunView = z.object({
  id: z.number(),
  firedAt: z.string(),
  outcome: z.enum(['fired', 'conditions', 'cooldown', 'loop', 'ownership']),
  reason: z.string().nullable(),
  trigger: z.object({
    type: z.string(),
    deviceId: z.string().optional(),
    capability: z.string().optional(),
    value: ReadingValue.nullable().optional(),
    online: z.boolean().optional(),
    chain: z.array(z.string()).optional(),
  }),
  conditions: z.array(ConditionResultView),
  commands: z.array(z.object({
    deviceId: z.string(),
    delaySeconds: z.number(),
    outcome: z.string(),
    commandId: z.string().nullable(),
    status: z.string(),
    error: z.string().nullable(),
  })),
})

const DryRunRequest = z.strictObject({
  rule: AutomationDeclaration,
  /** Days of history to replay, back from now. Default 7, at most 30. */
  days: z.number().int().min(1).max(defaultDryRunLimits.maxDays).default(7),
})

const DryRunView = z.object({
  from: z.string(),
  to: z.string(),
  pointsReplayed: z.number(),
  truncated: z.boolean(),
  cooldownSkips: z.number(),
  conditionsUnmet: z.number(),
  firings: z.array(z.object({
    at: z.string(),
    value: ReadingValue.nullable(),
    conditions: z.array(ConditionResultView),
    commands: z.array(z.object({ at: z.string(), deviceId: z.string(), command: CommandRequest })),
  })),
})

export function automationRoutes (api: ApiContext, automations: Automations) {
  const view = (a: Automation) => ({ ...a, suspended: automations.suspended(a) })
  const owned = async (ownerId: string, id: string) => {
    const automation = await automations.get(ownerId, id)
    if (!automation) throw errors.notFound('automation', id)
    return automation
  }
  /** Every device the rule names, each the caller's own (404 for any other). */
  const devicesOfRule = async (caller: Caller, rule: AutomationDeclaration) => {
    const devices = new Map<string, DeviceContext>()
    for (const id of devicesOf(rule)) devices.set(id, await visibleDevice(api, caller, id, ['owner']))
    return devices
  }

  return [
    route({
      method: 'POST',
      path: '/v1/automations',
      operationId: 'createAutomation',
      summary: 'Create an automation: a trigger, conditions and commands across your devices',
      tags: ['automations'],
      access: 'owner',
      body: AutomationDeclaration,
      status: 201,
      response: AutomationView,
      errors: ['NOT_FOUND', 'INVALID_AUTOMATION', 'AUTOMATION_LIMIT'],
      handler: async ({ body, caller }) => view(await automations.create(caller.subject, await devicesOfRule(caller, body), body)),
    }),
    route({
      method: 'GET',
      path: '/v1/automations',
      operationId: 'listAutomations',
      summary: "The owner's automations",
      tags: ['automations'],
      access: 'owner',
      response: z.object({ automations: z.array(AutomationView) }),
      handler: async ({ caller }) => ({ automations: (await automations.list(caller.subject)).map(view) }),
    }),
    route({
      method: 'POST',
      path: '/v1/automations:test',
      operationId: 'testAutomation',
      summary: 'Replay a candidate automation over your devices\' stored history: when it would have fired and what it would have sent',
      tags: ['automations'],
      access: 'owner',
      body: DryRunRequest,
      response: DryRunView,
      errors: ['NOT_FOUND', 'INVALID_AUTOMATION', 'BAD_REQUEST', 'STORAGE_UNAVAILABLE'],
      handler: async ({ body, caller }) => {
        const devices = await devicesOfRule(caller, body.rule)
        const problem = automations.problem(body.rule, devices)
        if (problem) throw errors.invalidAutomation(problem)
        try {
          return await dryRun(api.store, body.rule, body.days)
        } catch (err) {
          if (err instanceof DryRunRefused) throw errors.invalidAutomation(err.message)
          if (err instanceof QueryRefused) throw errors.badRequest(err.message)
          api.log.error({ err: (err as Error).message }, 'automation dry run failed')
          throw errors.storageUnavailable('the telemetry store did not answer; try again shortly')
        }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/automations/{id}',
      operationId: 'getAutomation',
      summary: 'One automation',
      tags: ['automations'],
      access: 'owner',
      params: IdParams,
      response: AutomationView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => view(await owned(caller.subject, params.id)),
    }),
    route({
      method: 'PUT',
      path: '/v1/automations/{id}',
      operationId: 'replaceAutomation',
      summary: 'Replace an automation (enable or disable it with "enabled")',
      tags: ['automations'],
      access: 'owner',
      params: IdParams,
      body: AutomationDeclaration,
      response: AutomationView,
      errors: ['NOT_FOUND', 'INVALID_AUTOMATION'],
      handler: async ({ params, body, caller }) => {
        const existing = await owned(caller.subject, params.id)
        return view(await automations.replace(existing, await devicesOfRule(caller, body), body))
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/automations/{id}',
      operationId: 'deleteAutomation',
      summary: 'Delete an automation and its runs',
      tags: ['automations'],
      access: 'owner',
      params: IdParams,
      status: 204,
      response: z.null(),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        if (!await automations.delete(caller.subject, params.id)) throw errors.notFound('automation', params.id)
        return null
      },
    }),
    route({
      method: 'GET',
      path: '/v1/automations/{id}/runs',
      operationId: 'listAutomationRuns',
      summary: "An automation's runs, newest first: trigger, conditions, and each command's status",
      tags: ['automations'],
      access: 'owner',
      params: IdParams,
      query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }),
      response: z.object({ automation: z.string(), runs: z.array(RunView) }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, query, caller }) => {
        const automation = await owned(caller.subject, params.id)
        return { automation: automation.id, runs: await automations.runs(automation.id, query.limit) }
      },
    }),
  ]
}
