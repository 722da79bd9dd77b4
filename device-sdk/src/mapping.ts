import { z } from 'zod'
import { CapabilityName, ReadingValue, type ModelCapability } from './capabilities.js'
import { findConversion, unitsFor, isUnitName } from './units.js'

/**
 * The mapping language: how a model's own payloads become canonical readings,
 * and how canonical commands become its payloads. It is data, so a maker
 * submits it through the API and the hub's built-in brands use the same one.
 */

/**
 * Where a value sits in a JSON payload: `data.temp_x10`, `sensors[2].value`,
 * `[0].v` (root array). In a `keyvalue` payload it is the key itself.
 */
/** The largest array index a path may hold: the hub builds command payloads along paths, so an index is an allocation. */
export const maxPathIndex = 1023
/** The most steps (keys and array indexes) a path may have. */
export const maxPathDepth = 16

/** A path's steps: how many, and its largest array index (-1 when it has none). */
function pathSteps (path: string): { depth: number, maxIndex: number } {
  let depth = 0
  let maxIndex = -1
  for (const part of path.split('.')) {
    if (!part.startsWith('[')) depth++
    for (const m of part.matchAll(/\[(\d+)\]/g)) {
      depth++
      maxIndex = Math.max(maxIndex, Number(m[1]))
    }
  }
  return { depth, maxIndex }
}

export const MappingPath = z.string().min(1).max(200)
  .regex(/^(?:[^.[\]]+|\[\d+\])(?:\.[^.[\]]+|\[\d+\])*$/, 'a path such as data.temp or sensors[2].value')
  .refine((p) => pathSteps(p).maxIndex <= maxPathIndex, `an array index in a path is at most ${maxPathIndex}`)
  .refine((p) => pathSteps(p).depth <= maxPathDepth, `a path has at most ${maxPathDepth} steps`)
  // The hub builds command payloads along these paths: a prototype's name would reach into the runtime's objects.
  .refine((p) => !/(?:^|\.)(?:__proto__|prototype|constructor)(?:$|[.[])/.test(p), 'a path may not use __proto__, prototype or constructor')
export type MappingPath = z.infer<typeof MappingPath>

/** A scalar a device sends: what property lists are matched on, and what constant fields hold. */
export const DeviceScalar = z.union([z.string().max(256), z.number().finite(), z.boolean()])
export type DeviceScalar = z.infer<typeof DeviceScalar>

/**
 * Device value (as text: `"OPEN"`, `"1"`, `"true"`) → canonical value. On the
 * way back a key that reads as a number or a boolean is sent as one.
 */
export const ValueMap = z.record(z.string().max(64), ReadingValue)
  .refine((m) => Object.keys(m).length > 0 && Object.keys(m).length <= 256, 'a map has 1 to 256 entries')
export type ValueMap = z.infer<typeof ValueMap>

/** One capability: where its value is, and how it becomes canonical. */
export const MappingRule = z.strictObject({
  capability: CapabilityName,
  /** `json`: the value's path; `keyvalue`: its key. */
  path: MappingPath.optional(),
  /** `properties`: the item whose keys have these values, e.g. `{"siid": 2, "piid": 1}`. */
  match: z.record(z.string().min(1).max(64), DeviceScalar).optional(),
  /** Applied first, before `unit`: canonical = unit(value × scale + offset). Default 1. */
  scale: z.number().finite().refine((n) => n !== 0, 'scale 0 would lose every value').optional(),
  /** Added after `scale`. Default 0. */
  offset: z.number().finite().optional(),
  /** The device's unit, from the unit table; default the capability's canonical unit. */
  unit: z.string().min(1).max(16).optional(),
  /** Device value → canonical value, for enums and booleans: `{"OPEN": false, "CLOSED": true}`. */
  map: ValueMap.optional(),
})
export type MappingRule = z.infer<typeof MappingRule>

export const TimestampUnit = z.enum(['s', 'ms', 'iso'])
export type TimestampUnit = z.infer<typeof TimestampUnit>

/** Where the device's clock reading is; absent means the time the hub received the payload. */
export const TimestampRule = z.strictObject({
  path: MappingPath.optional(),
  match: z.record(z.string().min(1).max(64), DeviceScalar).optional(),
  /** Epoch seconds, epoch milliseconds, or ISO-8601 text with a zone. */
  unit: TimestampUnit,
})
export type TimestampRule = z.infer<typeof TimestampRule>

/** `properties` payloads: a list of items, each identified by some keys and holding a value. */
export const PropertyListFormat = z.strictObject({
  /** Path of the list in the payload; default: the payload is the list. */
  list: MappingPath.optional(),
  /** The keys that identify an item, e.g. `["siid", "piid"]`. */
  keys: z.array(z.string().min(1).max(64)).min(1).max(4),
  /** The key holding the item's value. Default `value`. */
  value: z.string().min(1).max(64).default('value'),
})
export type PropertyListFormat = z.infer<typeof PropertyListFormat>

/** `keyvalue` payloads: `V=230.1;A=1.2;W=276`. */
export const KeyValueFormat = z.strictObject({
  /** Between pairs. Default `;`. */
  separator: z.string().min(1).max(4).default(';'),
  /** Between a key and its value. Default `=`. */
  assign: z.string().min(1).max(4).default('='),
})
export type KeyValueFormat = z.infer<typeof KeyValueFormat>

/** How the device recognises and answers a command. */
export const AckRule = z.strictObject({
  /** Where the ack carries the command id. Default: the same place as `commands.id`. */
  id: MappingPath.optional(),
  /** Where the ack says how it went, and which values mean success; absent: every ack is a success. */
  status: z.strictObject({ path: MappingPath, ok: z.array(DeviceScalar).min(1).max(16) }).optional(),
  /** Where a failed ack explains itself. */
  error: MappingPath.optional(),
  /** True when a successful ack carries the new state as telemetry would: the reading rules read it. Default false. */
  state: z.boolean().optional(),
})
export type AckRule = z.infer<typeof AckRule>

/** One action: `{"fields": {"cmd.op": "START"}, "params": {"programme": "cmd.prog"}}`. */
export const ActionRule = z.strictObject({
  /** Constant fields that say which action this is. */
  fields: z.record(MappingPath, DeviceScalar).refine((f) => Object.keys(f).length > 0, 'an action needs at least one field that names it'),
  /** Where each of the action's params goes, by param name; params are passed as they are (text, number or boolean). Default none. */
  params: z.record(z.string().min(1).max(64), MappingPath).optional(),
})
export type ActionRule = z.infer<typeof ActionRule>

/** The way back: canonical `set` commands and actions as the device's payload, and its acks. */
export const CommandMapping = z.strictObject({
  /** Where the command id goes in the payload (a key for `keyvalue`). */
  id: MappingPath,
  /** Constant fields every command payload carries, e.g. `{"method": "set_properties"}`. */
  fields: z.record(MappingPath, DeviceScalar).optional(),
  /** One rule per settable capability: where its value goes and how it is converted back. Default none. */
  set: z.array(MappingRule).max(64).default([]),
  /** Actions by name (`{"action": "start"}`): the constant fields that say it, and where its params go. Default none. */
  actions: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'an action name is a letter, then letters, digits, _ or -'), ActionRule).optional(),
  ack: AckRule.default({}),
}).refine((c) => c.set.length > 0 || Object.keys(c.actions ?? {}).length > 0, 'commands needs "set" rules or "actions"')
export type CommandMapping = z.infer<typeof CommandMapping>

export const PayloadFormat = z.enum(['json', 'properties', 'keyvalue'])
export type PayloadFormat = z.infer<typeof PayloadFormat>

export const Mapping = z.strictObject({
  format: PayloadFormat,
  /** Required with `format: "properties"`. */
  properties: PropertyListFormat.optional(),
  /** Optional with `format: "keyvalue"`; defaults `;` and `=`. */
  keyValue: KeyValueFormat.optional(),
  timestamp: TimestampRule.optional(),
  readings: z.array(MappingRule).min(1).max(128),
  commands: CommandMapping.optional(),
})
export type Mapping = z.infer<typeof Mapping>

/** A mapping that is not valid for its model; `issues` each start with the field they are about. */
export class MappingError extends Error {
  constructor (readonly issues: string[]) {
    super(issues.slice(0, 5).join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : ''))
  }
}

/** `['readings', 2, 'unit']` → `readings[2].unit` */
export function fieldName (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : (out ? '.' : '') + String(p)
  return out || '(mapping)'
}

/** Where a rule finds its value: a path (in `keyvalue`, the key), or the item of a property list whose keys match. */
export type ValueSource =
  | { readonly kind: 'path', readonly path: string }
  | { readonly kind: 'match', readonly match: Readonly<Record<string, DeviceScalar>> }

/** How a payload is laid out, with its defaults filled in. */
export type PayloadLayout =
  | { readonly format: 'json' }
  | { readonly format: 'keyvalue', readonly separator: string, readonly assign: string }
  | { readonly format: 'properties', readonly list: string | undefined, readonly keys: readonly string[], readonly value: string }

/** A rule checked against its model: its capability resolved and its source known. */
export interface ValidRule {
  /** `readings[2]`, `commands.set[0]`: the rule's place in the mapping, for messages. */
  readonly where: string
  readonly rule: MappingRule
  readonly capability: ModelCapability
  readonly source: ValueSource
}

export interface ValidAck {
  /** Where the ack carries the command id (the command's own place by default). */
  readonly id: string
  readonly status: { readonly path: string, readonly ok: readonly DeviceScalar[] } | null
  readonly error: string | null
  readonly state: boolean
}

export interface ValidCommands {
  readonly id: string
  readonly fields: Readonly<Record<string, DeviceScalar>>
  readonly set: readonly ValidRule[]
  readonly actions: Readonly<Record<string, ActionRule>>
  readonly ack: ValidAck
}

/** What parseMapping returns: the mapping as parsed, and its parts checked against the model, with nothing left optional that a compiler needs. */
export interface ValidMapping {
  /** The mapping as parsed, defaults filled in: what is stored and shown. */
  readonly mapping: Mapping
  readonly layout: PayloadLayout
  readonly readings: readonly ValidRule[]
  readonly timestamp: { readonly source: ValueSource, readonly unit: TimestampUnit } | null
  readonly commands: ValidCommands | null
}

/**
 * Parses a mapping and checks it against the model's capabilities. Throws a
 * MappingError whose issues name the field and say what to do:
 * `readings[2].unit: unknown unit "degF"; use one of °C, °F, K, d°C, d°F`.
 */
export function parseMapping (input: unknown, capabilities: readonly ModelCapability[]): ValidMapping {
  const parsed = Mapping.safeParse(input)
  if (!parsed.success) {
    throw new MappingError(parsed.error.issues.map((i) => {
      // zod says "Invalid key in record"; the key's own rule says why.
      const inner = i.code === 'invalid_key' ? i.issues[0]?.message : undefined
      return `${fieldName(i.path)}: ${inner ?? i.message}`
    }))
  }
  const mapping = parsed.data
  const issues: string[] = []
  const caps = new Map(capabilities.map((c) => [c.name, c]))

  if (mapping.format === 'properties' && !mapping.properties) {
    issues.push('properties: a "properties" mapping says how items are identified, e.g. {"keys": ["siid", "piid"], "list": "params"}')
  }
  if (mapping.format !== 'properties' && mapping.properties) issues.push(`properties: only for format "properties", not "${mapping.format}"`)
  if (mapping.format !== 'keyvalue' && mapping.keyValue) issues.push(`keyValue: only for format "keyvalue", not "${mapping.format}"`)

  /** The rule's source, or null (with the issue noted) when it has none that fits the format. */
  const checkSource = (where: string, source: { path?: string, match?: Record<string, DeviceScalar> }): ValueSource | null => {
    if (mapping.format === 'properties') {
      if (source.path !== undefined) issues.push(`${where}.path: a "properties" mapping finds values by "match", e.g. {"siid": 2, "piid": 1}`)
      if (!source.match) {
        issues.push(`${where}.match: required with format "properties", e.g. {"siid": 2, "piid": 1}`)
        return null
      }
      if (mapping.properties) {
        const want = [...mapping.properties.keys].sort().join(', ')
        const got = Object.keys(source.match).sort().join(', ')
        if (want !== got) issues.push(`${where}.match: must name exactly the keys ${want} (properties.keys), got ${got}`)
      }
      return source.path === undefined ? { kind: 'match', match: source.match } : null
    }
    if (source.match !== undefined) issues.push(`${where}.match: only for format "properties"; use "path"`)
    if (source.path === undefined) {
      issues.push(`${where}.path: required with format "${mapping.format}" (${mapping.format === 'keyvalue' ? 'the key' : 'e.g. "data.temp"'})`)
      return null
    }
    return source.match === undefined ? { kind: 'path', path: source.path } : null
  }

  /** The rule checked against the model, or null (with its issues noted). */
  const checkRule = (where: string, rule: MappingRule, seen: Map<string, string>, forCommand: boolean): ValidRule | null => {
    const source = checkSource(where, rule)
    const cap = caps.get(rule.capability)
    if (!cap) {
      issues.push(`${where}.capability: the model has no capability ${rule.capability}; declare it in "capabilities" or drop this rule`)
      return null
    }
    const earlier = seen.get(rule.capability)
    if (earlier) issues.push(`${where}.capability: ${rule.capability} is already mapped by ${earlier}`)
    seen.set(rule.capability, where)
    if (forCommand && !cap.settable) issues.push(`${where}.capability: ${rule.capability} cannot be set, so it has no command`)
    if (cap.kind !== 'number') {
      if (rule.unit !== undefined) issues.push(`${where}.unit: ${cap.name} is ${cap.kind === 'enum' ? 'an enum' : `a ${cap.kind}`}; it takes no unit`)
      if (rule.scale !== undefined || rule.offset !== undefined) issues.push(`${where}: ${cap.name} is ${cap.kind === 'enum' ? 'an enum' : `a ${cap.kind}`}; scale and offset are for numbers`)
    } else if (rule.unit !== undefined) {
      const canonical = cap.unit ?? ''
      if (!isUnitName(rule.unit)) {
        issues.push(`${where}.unit: unknown unit "${rule.unit}"; use one of ${unitsFor(canonical).join(', ')}`)
      } else if (!findConversion(rule.unit, canonical)) {
        issues.push(`${where}.unit: "${rule.unit}" does not convert to ${canonical} (${cap.name}); use one of ${unitsFor(canonical).join(', ')}`)
      }
    }
    if (rule.map) {
      const deviceValueOf = new Map<ReadingValue, string>()
      for (const [key, value] of Object.entries(rule.map)) {
        const problem = mapTargetProblem(cap, value)
        if (problem) issues.push(`${where}.map.${key}: ${problem}`)
        const other = deviceValueOf.get(value)
        // Many device values may mean one canonical value on the way in, but a command must know which one to send.
        if (forCommand && other !== undefined) issues.push(`${where}.map: ${other} and ${key} both mean ${JSON.stringify(value)}; a command needs exactly one device value for it`)
        deviceValueOf.set(value, key)
      }
    }
    return source && { where, rule, capability: cap, source }
  }

  const seenReadings = new Map<string, string>()
  const readings = validOnly(mapping.readings.map((rule, i) => checkRule(`readings[${i}]`, rule, seenReadings, false)))
  let timestamp: ValidMapping['timestamp'] = null
  if (mapping.timestamp) {
    const ts = mapping.timestamp
    let source: ValueSource | null = null
    // A property list often carries its clock in the envelope, so either way is fine there.
    if (mapping.format === 'properties') {
      if ((ts.path === undefined) === (ts.match === undefined)) issues.push('timestamp: give either "path" (in the envelope) or "match" (an item of the list)')
      else source = ts.path !== undefined ? { kind: 'path', path: ts.path } : ts.match !== undefined ? { kind: 'match', match: ts.match } : null
    } else source = checkSource('timestamp', ts)
    timestamp = source && { source, unit: ts.unit }
  }

  let commands: ValidCommands | null = null
  if (mapping.commands) {
    const c = mapping.commands
    const seenCommands = new Map<string, string>()
    const set = validOnly(c.set.map((rule, i) => checkRule(`commands.set[${i}]`, rule, seenCommands, true)))
    if (mapping.format === 'properties' && mapping.properties && !mapping.properties.list) {
      issues.push('properties.list: commands need the list inside an object, next to the command id, e.g. "params"')
    }
    const ack: ValidAck = { id: c.ack.id ?? c.id, status: c.ack.status ?? null, error: c.ack.error ?? null, state: c.ack.state ?? false }
    commands = { id: c.id, fields: c.fields ?? {}, set, actions: c.actions ?? {}, ack }
  }

  const layout = layoutOf(mapping)
  if (issues.length > 0 || !layout) throw new MappingError(issues)
  return { mapping, layout, readings, timestamp, commands }
}

function validOnly (rules: Array<ValidRule | null>): ValidRule[] {
  return rules.filter((r): r is ValidRule => r !== null)
}

/** The payload's layout; null for a property list that does not say how items are identified (an issue already). */
function layoutOf (mapping: Mapping): PayloadLayout | null {
  switch (mapping.format) {
    case 'json': return { format: 'json' }
    case 'keyvalue': return { format: 'keyvalue', separator: mapping.keyValue?.separator ?? ';', assign: mapping.keyValue?.assign ?? '=' }
    case 'properties': return mapping.properties ? { format: 'properties', list: mapping.properties.list, keys: mapping.properties.keys, value: mapping.properties.value } : null
  }
}

function mapTargetProblem (cap: ModelCapability, value: ReadingValue): string | null {
  switch (cap.kind) {
    case 'boolean': return typeof value === 'boolean' ? null : `${cap.name} is a boolean; map to true or false, not ${JSON.stringify(value)}`
    case 'number': return typeof value === 'number' ? null : `${cap.name} is a number; map to numbers, not ${JSON.stringify(value)}`
    case 'enum': return typeof value === 'string' && cap.enum!.includes(value) ? null : `${JSON.stringify(value)} is not one of ${cap.name}'s values ${cap.enum!.join(', ')}`
    case 'string': return typeof value === 'string' ? null : `${cap.name} is text; map to strings, not ${JSON.stringify(value)}`
  }
}

/** A mapping as written, before defaults are filled in: what makers and built-in brands author. */
export type MappingInput = z.input<typeof Mapping>
