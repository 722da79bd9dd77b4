import { z } from 'zod'
import type { CapabilityName } from './capabilities.js'

/**
 * The canonical actions: commands that do something rather than set a value.
 * A model offers an action when it has every capability the action needs, so
 * makers declare capabilities and get the matching actions for free.
 */
export interface ActionSpec {
  /** Capabilities a model must have to offer this action; empty means every model. */
  readonly requires: readonly CapabilityName[]
  /** What `params` the action takes. */
  readonly params: z.ZodType<Record<string, unknown>>
  readonly description: string
}

const NoParams = z.strictObject({})

export const actions = {
  identify: {
    requires: [],
    params: z.strictObject({ seconds: z.number().int().min(1).max(60).optional() }),
    description: 'Blink or beep so the owner can find the appliance.',
  },
  reboot: { requires: [], params: NoParams, description: 'Restart the appliance.' },
  toggle: { requires: ['power'], params: NoParams, description: 'Switch power to the other state.' },
  start: {
    requires: ['cyclePhase'],
    params: z.strictObject({ programme: z.string().min(1).max(64).optional(), delaySeconds: z.number().int().min(0).max(86_400).optional() }),
    description: 'Start a programme (washer, dryer, dishwasher).',
  },
  pause: { requires: ['cyclePhase'], params: NoParams, description: 'Pause the running programme.' },
  resume: { requires: ['cyclePhase'], params: NoParams, description: 'Resume a paused programme.' },
  cancel: { requires: ['cyclePhase'], params: NoParams, description: 'Cancel the running programme.' },
  resetEnergy: { requires: ['energy'], params: NoParams, description: 'Reset the cumulative energy meter to zero.' },
} as const satisfies Record<string, ActionSpec>

export type ActionName = keyof typeof actions
export const actionNames = Object.keys(actions) as ActionName[]

export function isActionName (name: string): name is ActionName {
  return Object.hasOwn(actions, name)
}

/** The actions a model with these capabilities offers. */
export function actionsOf (capabilities: Iterable<string>): ActionName[] {
  const has = new Set(capabilities)
  return actionNames.filter((a) => actions[a].requires.every((c) => has.has(c)))
}
