import { z } from 'zod'
import { ReadingValue } from '@trellis/device-sdk'
import { CommandRequest } from '../commands/validate.js'

const DeviceId = z.string().min(1).max(64)
const Capability = z.string().min(1).max(64)
const Clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day as HH:MM, 00:00 to 23:59')
const Timezone = z.string().min(1).max(64)
export const Weekday = z.enum(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])
export type Weekday = z.infer<typeof Weekday>

/** Where the sun is reckoned: the home's location. */
export const Location = z.strictObject({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
})
export type Location = z.infer<typeof Location>

/** How a reading is compared: `changes` needs no value; `above`/`below` a number; `equals` any reading value. */
export const Comparison = z.enum(['changes', 'above', 'below', 'equals'])
export type Comparison = z.infer<typeof Comparison>

const needsValue = (c: { op: Comparison, value?: unknown }) =>
  c.op === 'changes' ? c.value === undefined : (c.op === 'equals' ? c.value !== undefined : typeof c.value === 'number')
const valueMessage = '"changes" takes no value; "above" and "below" take a number; "equals" takes the value to match'

/** What starts a rule. */
export const Trigger = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('reading'),
    deviceId: DeviceId,
    capability: Capability,
    op: Comparison,
    value: ReadingValue.optional(),
    /** Fire only once the comparison has held this long (above, below, equals). Default 0. */
    forSeconds: z.number().int().min(0).max(86_400).default(0),
  }).refine(needsValue, valueMessage).refine((t) => t.op !== 'changes' || t.forSeconds === 0, '"forSeconds" goes with above, below or equals'),
  z.strictObject({
    type: z.literal('presence'),
    deviceId: DeviceId,
    /** Fire when the device comes online (true), goes offline (false), or either (absent). */
    online: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('time'),
    /** node-cron: five fields, or six with seconds first. */
    cron: z.string().trim().min(9).max(120),
    timezone: Timezone.default('UTC'),
  }),
  z.strictObject({
    type: z.literal('sun'),
    event: z.enum(['sunrise', 'sunset']),
    /** Minutes after (positive) or before (negative) the event. Default 0. */
    offsetMinutes: z.number().int().min(-720).max(720).default(0),
    location: Location,
  }),
])
export type Trigger = z.infer<typeof Trigger>

/** What must hold, when the trigger fires, for the actions to run. */
export const Condition = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('state'),
    deviceId: DeviceId,
    capability: Capability,
    op: z.enum(['equals', 'not', 'above', 'below']),
    value: ReadingValue,
  }).refine((c) => (c.op !== 'above' && c.op !== 'below') || typeof c.value === 'number', '"above" and "below" take a number'),
  z.strictObject({
    type: z.literal('time'),
    /** From this time of day (inclusive)… */
    after: Clock.optional(),
    /** …until this one (exclusive); a window may span midnight (22:00 to 06:00). */
    before: Clock.optional(),
    days: z.array(Weekday).min(1).max(7).optional(),
    timezone: Timezone.default('UTC'),
  }).refine((c) => c.after !== undefined || c.before !== undefined || c.days !== undefined, 'give "after", "before" or "days"'),
  z.strictObject({
    type: z.literal('sun'),
    /** `down`: between sunset and sunrise at the location. */
    is: z.enum(['up', 'down']),
    location: Location,
  }),
])
export type Condition = z.infer<typeof Condition>

export const Action = z.strictObject({
  deviceId: DeviceId,
  command: CommandRequest,
  /** Send this long after the rule fires. Default 0, at most 3600. */
  delaySeconds: z.number().int().min(0).max(3600).default(0),
})
export type Action = z.infer<typeof Action>

/** A rule as an owner declares it. */
export const AutomationDeclaration = z.strictObject({
  name: z.string().trim().min(1).max(100),
  trigger: Trigger,
  conditions: z.array(Condition).max(10).default([]),
  actions: z.array(Action).min(1).max(10),
  /** After firing, the rule does not fire again for this long. Default 60, at most 86400. */
  cooldownSeconds: z.number().int().min(0).max(86_400).default(60),
  /** Default true. */
  enabled: z.boolean().default(true),
})
export type AutomationDeclaration = z.infer<typeof AutomationDeclaration>

export interface Automation extends AutomationDeclaration {
  id: string
  ownerId: string
  createdAt: string
}

/** Every device a rule names: its trigger's, its conditions' and its actions'. */
export function devicesOf (rule: Pick<AutomationDeclaration, 'trigger' | 'conditions' | 'actions'>): string[] {
  const ids = new Set<string>()
  if (rule.trigger.type === 'reading' || rule.trigger.type === 'presence') ids.add(rule.trigger.deviceId)
  for (const c of rule.conditions) if (c.type === 'state') ids.add(c.deviceId)
  for (const a of rule.actions) ids.add(a.deviceId)
  return [...ids]
}
