import { z } from 'zod'
import { ReadingValue, actions, actionsOf, checkValue, isActionName, isCapabilityName } from '@trellis/device-sdk'
import type { CompiledModel } from '../registry/directory.js'
import type { Reading } from '../normalize/index.js'

/** What an owner asks a device to do: set capabilities, or invoke one action. */
export const CommandRequest = z.strictObject({
  set: z.record(z.string().max(64), ReadingValue).optional(),
  action: z.string().min(1).max(64).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
}).refine((c) => (c.set !== undefined) !== (c.action !== undefined), 'give either "set" (capability → value) or "action", not both and not neither')
  .refine((c) => c.set === undefined || Object.keys(c.set).length > 0, '"set" names at least one capability')
  .refine((c) => c.params === undefined || c.action !== undefined, '"params" goes with "action"')
export type CommandRequest = z.infer<typeof CommandRequest>

/**
 * Why `request` cannot go to a device of `model`, or null when it can. The
 * message names the capability or action and the model, and says what would
 * be accepted instead.
 */
export function commandProblem (model: CompiledModel, request: CommandRequest): string | null {
  const problems: string[] = []
  for (const [name, value] of Object.entries(request.set ?? {})) {
    const cap = isCapabilityName(name) ? model.capabilities.get(name) : undefined
    if (!cap) {
      problems.push(`model ${model.name} has no capability ${name}; settable: ${settableOf(model).join(', ') || 'none'}`)
      continue
    }
    if (!cap.settable) {
      problems.push(`${name} is read-only; settable on model ${model.name}: ${settableOf(model).join(', ') || 'none'}`)
      continue
    }
    const problem = checkValue(cap, value, model.name)
    if (problem) problems.push(problem)
  }
  if (request.action !== undefined) {
    const offered = actionsOf(model.capabilities.keys())
    if (!isActionName(request.action) || !offered.includes(request.action)) {
      problems.push(`model ${model.name} has no action ${request.action}; its actions: ${offered.join(', ')}`)
    } else {
      const parsed = actions[request.action].params.safeParse(request.params ?? {})
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        problems.push(`action ${request.action}: params${issue.path.length ? '.' + issue.path.join('.') : ''}: ${issue.message}`)
      }
    }
  }
  return problems.length > 0 ? problems.join('; ') : null
}

function settableOf (model: CompiledModel): string[] {
  return [...model.capabilities.values()].filter((c) => c.settable).map((c) => c.name)
}

/** The readings of the state an ack reports, and a problem for each value the model does not allow. */
export function ackStateReadings (model: CompiledModel, state: Record<string, ReadingValue>): { readings: Reading[], problems: string[] } {
  const readings: Reading[] = []
  const problems: string[] = []
  for (const [name, value] of Object.entries(state)) {
    const cap = isCapabilityName(name) ? model.capabilities.get(name) : undefined
    const problem = cap ? checkValue(cap, value, model.name) : `model ${model.name} has no capability ${name}`
    if (problem) problems.push(problem)
    else readings.push({ capability: cap!.name, value })
  }
  return { readings, problems }
}
