import { z } from 'zod'
import { CapabilityName, ReadingValue, type ModelCapability } from './capabilities.js'
import { findConversion, unitsFor, isUnitName } from './units.js'
import { actions, actionsOf, isActionName } from './actions.js'

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

/** The number types a byte field may hold. */
export const ByteFieldType = z.enum(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32'])
export type ByteFieldType = z.infer<typeof ByteFieldType>
/** The largest byte offset a field may start at. */
export const maxByteOffset = 1023

/** `binary` payloads: a number at a byte offset, e.g. `{"offset": 2, "type": "i16", "endian": "little"}`. */
export const ByteField = z.strictObject({
  offset: z.number().int().min(0).max(maxByteOffset),
  type: ByteFieldType,
  /** Byte order of a field wider than a byte. Default `big`. */
  endian: z.enum(['big', 'little']).optional(),
})
export type ByteField = z.infer<typeof ByteField>

/** One capability: where its value is, and how it becomes canonical. */
export const MappingRule = z.strictObject({
  /** `binary`: the field's offset and type, read before `scale` and the rest. */
  bytes: ByteField.optional(),
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
  /** `binary`: the field holding the clock (epoch seconds or milliseconds). */
  bytes: ByteField.optional(),
  match: z.record(z.string().min(1).max(64), DeviceScalar).optional(),
  /** Epoch seconds, epoch milliseconds, or ISO-8601 text (with a zone, or local time: see `zone`). */
  unit: TimestampUnit,
  /**
   * With `unit: "iso"`: the IANA time zone (`Europe/Berlin`) that local times
   * without an offset (`2026-11-18T08:00:00`, Tasmota's `Time`) are read in.
   * Default `UTC`. Text with an offset or `Z` keeps its own.
   */
  zone: z.string().min(1).max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin or UTC').optional(),
})

/** Whether the runtime knows `zone` as an IANA time zone. */
export function isTimeZone (zone: string): boolean {
  try {
    // eslint-disable-next-line no-new
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}
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

/** How a command or an ack is written, apart from the telemetry's format. */
export const CommandFormat = z.enum(['json', 'keyvalue', 'template'])
export type CommandFormat = z.infer<typeof CommandFormat>
export const AckFormat = z.enum(['json', 'keyvalue'])
export type AckFormat = z.infer<typeof AckFormat>

/** The placeholders a command template may hold. */
export const templatePlaceholders = ['id', 'key', 'value'] as const

/** How the device recognises and answers a command. */
export const AckRule = z.strictObject({
  /** How an ack is written: `json` or `keyvalue` pairs. Default: the commands' format (`json` for a template), else as telemetry is written. */
  format: AckFormat.optional(),
  /** With `format: "keyvalue"`: its separators. Default `;` and `=`. */
  keyValue: KeyValueFormat.optional(),
  /** Where the ack carries the command id. Default: the same place as `commands.id`. */
  id: MappingPath.optional(),
  /**
   * True when the device answers no ack but confirms by reporting the new
   * state (Tasmota's `stat/…/POWER`): a message is acknowledged by the first
   * report after it that shows every value it set. Default false.
   */
  report: z.boolean().optional(),
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
  /**
   * How a command is written, whatever the telemetry's format: `json`,
   * `keyvalue` text, or a fixed `template`. Default: `keyvalue` for keyvalue
   * telemetry, else JSON (with the property list of `properties`).
   */
  format: CommandFormat.optional(),
  /** With `format: "keyvalue"`: its separators. Default: the telemetry's, else `;` and `=`. */
  keyValue: KeyValueFormat.optional(),
  /**
   * With `format: "template"`: the message as text, with `{id}`, `{key}` (a
   * set rule's `path`, or an action's name) and `{value}` (the device value)
   * filled in, e.g. `"SET {key} {value} #{id}"`. One message per value.
   */
  template: z.string().min(1).max(512).optional(),
  /**
   * With `format: "json"`: each set value written as a key/value pair, the
   * rule's `path` being the device's key: `{"key": "k", "value": "v"}` gives
   * `{"k": "SET", "v": 1400}`; with `list`, the pairs are items of the list
   * at that path: `{"body": [{"k": "SET", "v": 1400}]}`. Default: each value
   * at its own path.
   */
  pairs: z.strictObject({ list: MappingPath.optional(), key: MappingPath, value: MappingPath }).optional(),
  /**
   * `one`: a command is one message; `each`: one message per set value, each
   * with its own id `<command id>.<n>` (n from 1), and the command is `ok`
   * only when every one is acknowledged. Default `one` (`each` for a template).
   */
  messages: z.enum(['one', 'each']).optional(),
  /** Where the command id goes in the payload (a key for `keyvalue`); with a template, `{id}` places it instead. */
  id: MappingPath.optional(),
  /** Constant fields every command payload carries, e.g. `{"method": "set_properties"}`. */
  fields: z.record(MappingPath, DeviceScalar).optional(),
  /** One rule per settable capability: where its value goes and how it is converted back. Default none. */
  set: z.array(MappingRule).max(64).default([]),
  /** Actions by name (`{"action": "start"}`): the constant fields that say it, and where its params go. Default none. */
  actions: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'an action name is a letter, then letters, digits, _ or -'), ActionRule).optional(),
  ack: AckRule.default({}),
}).refine((c) => c.set.length > 0 || Object.keys(c.actions ?? {}).length > 0, 'commands needs "set" rules or "actions"')
export type CommandMapping = z.infer<typeof CommandMapping>

/**
 * A topic of the device's own tree, for firmware that cannot move to
 * `devices/{id}/…`: levels split by `/`, with `{device}` (the device id, as
 * provisioned) once as a whole level, so that a device reaches only its own
 * topics. A commands topic may hold `{key}` (the set rule's `path`) as a level.
 */
export const TopicTemplate = z.string().min(3).max(200)
  .refine((t) => t.split('/').filter((l) => l === '{device}').length === 1, 'a topic template holds {device} once, as a whole level, e.g. "tele/{device}/SENSOR"')
  .refine((t) => !/[+#\u0000]/.test(t) && !t.startsWith('$') && !t.startsWith('devices/'), 'a topic template has no + or #, does not start with $, and stays out of devices/ (the canonical tree)')
  .refine((t) => t.split('/').length <= 8 && t.split('/').every((l) => l.length > 0 && (!/[{}]/.test(l) || l === '{device}' || l === '{key}')), 'a topic template has 1 to 8 non-empty levels; {device} and {key} are whole levels')
  // A literal level spelling a device id (the hub's are dev-…) could make one device's topic another's.
  .refine((t) => t.split('/').every((l) => !l.startsWith('dev-')), 'a topic template\'s own levels may not start with dev- (the hub\'s device ids); use {device}')
export type TopicTemplate = z.infer<typeof TopicTemplate>

/** One topic the device reports on. */
export const TopicRule = z.strictObject({
  topic: TopicTemplate,
  /**
   * The payload is one value as text (`ON`, `21.5`): how it becomes canonical.
   * Default: the payload is read by the mapping's format and readings.
   */
  value: z.strictObject({
    capability: CapabilityName,
    scale: z.number().finite().refine((n) => n !== 0, 'scale 0 would lose every value').optional(),
    offset: z.number().finite().optional(),
    unit: z.string().min(1).max(16).optional(),
    map: ValueMap.optional(),
  }).optional(),
})
export type TopicRule = z.infer<typeof TopicRule>

/** The device's own topic tree: what it reports on and where it takes commands. */
export const TopicTree = z.strictObject({
  /** Topics the device publishes readings on: `[{"topic": "tele/{device}/SENSOR"}, {"topic": "stat/{device}/POWER", "value": {...}}]`. */
  telemetry: z.array(TopicRule).min(1).max(16),
  /** Where its commands go, e.g. `cmnd/{device}/{key}`. Default: `devices/{id}/commands`. */
  commands: TopicTemplate.optional(),
})
export type TopicTree = z.infer<typeof TopicTree>

/**
 * A radio gateway's message: many devices' readings, each entry naming its
 * device. Each child's payload is read by the child's own model mapping, and
 * the gateway speaks only for children provisioned under it.
 */
export const GatewayRule = z.strictObject({
  /** Path of the list of entries in the gateway's JSON payload, e.g. `rx`. */
  list: MappingPath,
  /** Path, inside an entry, of the child's device id (as provisioned), e.g. `node`. */
  child: MappingPath,
  /** Path, inside an entry, of the child's payload: text (hex, base64, key/value) or a JSON value, read by the child's model. */
  payload: MappingPath,
})
export type GatewayRule = z.infer<typeof GatewayRule>
/** The most child entries one gateway message may carry; past it the rest are refused with a reason. */
export const maxGatewayEntries = 256

export const PayloadFormat = z.enum(['json', 'properties', 'keyvalue', 'binary'])
export type PayloadFormat = z.infer<typeof PayloadFormat>

export const Mapping = z.strictObject({
  format: PayloadFormat,
  /** Required with `format: "properties"`. */
  properties: PropertyListFormat.optional(),
  /** Optional with `format: "keyvalue"`; defaults `;` and `=`. */
  keyValue: KeyValueFormat.optional(),
  /** Optional with `format: "binary"`: how the bytes travel. Default `{"encoding": "raw"}`. */
  binary: z.strictObject({
    /** `raw`: the MQTT payload is the bytes; `hex` or `base64`: it is text spelling them. */
    encoding: z.enum(['raw', 'hex', 'base64']),
  }).optional(),
  timestamp: TimestampRule.optional(),
  /** The device's own topics instead of `devices/{id}/telemetry` and `…/commands`. Default: the canonical tree. */
  topics: TopicTree.optional(),
  /** A gateway's mapping: where its message lists its children's payloads (format `json` only). Default: none. */
  gateway: GatewayRule.optional(),
  /** At least one, unless the mapping has a `gateway` section (its own readings may then be none). */
  readings: z.array(MappingRule).max(128),
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
  | { readonly kind: 'bytes', readonly field: ByteField }
  /** The whole payload, as trimmed text: a topic that carries one value. */
  | { readonly kind: 'text' }

/** How a payload is laid out, with its defaults filled in. */
export type PayloadLayout =
  | { readonly format: 'json' }
  | { readonly format: 'keyvalue', readonly separator: string, readonly assign: string }
  | { readonly format: 'properties', readonly list: string | undefined, readonly keys: readonly string[], readonly value: string }
  | { readonly format: 'binary', readonly encoding: 'raw' | 'hex' | 'base64' }

/** A rule checked against its model: its capability resolved and its source known. */
export interface ValidRule {
  /** `readings[2]`, `commands.set[0]`: the rule's place in the mapping, for messages. */
  readonly where: string
  readonly rule: MappingRule
  readonly capability: ModelCapability
  readonly source: ValueSource
}

export interface ValidAck {
  /** How acks are written, separators filled in. */
  readonly layout: { readonly format: 'json' } | { readonly format: 'keyvalue', readonly separator: string, readonly assign: string }
  /** Where the ack carries the command id (the command's own place by default). */
  readonly id: string
  readonly status: { readonly path: string, readonly ok: readonly DeviceScalar[] } | null
  readonly error: string | null
  readonly state: boolean
  /** Acknowledged by a state report showing the values set, not by an ack. */
  readonly report: boolean
}

/** How command messages are written, defaults filled in. */
export type CommandLayout =
  | { readonly format: 'json', readonly pairs: { readonly list: string | undefined, readonly key: string, readonly value: string } | null }
  | { readonly format: 'properties', readonly list: string, readonly keys: readonly string[], readonly value: string }
  | { readonly format: 'keyvalue', readonly separator: string, readonly assign: string }
  | { readonly format: 'template', readonly template: string }

export interface ValidCommands {
  readonly layout: CommandLayout
  /** `each`: one message per set value. */
  readonly messages: 'one' | 'each'
  /** Where the command id goes; null for a template (its `{id}` places it). */
  readonly id: string | null
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
  readonly timestamp: { readonly source: ValueSource, readonly unit: TimestampUnit, readonly zone: string } | null
  readonly commands: ValidCommands | null
  /** The device's own topics, checked; null for the canonical tree. */
  readonly topics: ValidTopics | null
  /** A gateway's entries: where they are, and where each names its child and holds its payload; null for any other device. */
  readonly gateway: GatewayRule | null
}

/** A topic template split around `{device}`: a topic matches when it is prefix + the device id + suffix. */
export interface TopicParts { readonly template: string, readonly prefix: string, readonly suffix: string }

export interface ValidTopics {
  /** Each telemetry topic, and the rule reading its one value (null: read by the mapping's format). */
  readonly telemetry: ReadonlyArray<{ readonly parts: TopicParts, readonly rule: ValidRule | null }>
  /** Where commands go; null: `devices/{id}/commands`. */
  readonly commands: string | null
}

export function topicParts (template: string): TopicParts {
  const at = template.indexOf('{device}')
  return { template, prefix: template.slice(0, at), suffix: template.slice(at + 8) }
}

/** Whether `topic` is `parts` filled in with `deviceId`; compares in place, without building the topic. */
export function topicMatches (parts: TopicParts, deviceId: string, topic: string): boolean {
  return topic.length === parts.prefix.length + deviceId.length + parts.suffix.length &&
    topic.startsWith(parts.prefix) && topic.startsWith(deviceId, parts.prefix.length) && topic.endsWith(parts.suffix)
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
  if (mapping.format !== 'binary' && mapping.binary) issues.push(`binary: only for format "binary", not "${mapping.format}"`)

  /** The rule's source, or null (with the issue noted) when it has none that fits the format. */
  const checkSource = (where: string, source: { path?: string, match?: Record<string, DeviceScalar>, bytes?: ByteField }, format: string = mapping.format): ValueSource | null => {
    if (format === 'binary') {
      if (source.path !== undefined || source.match !== undefined) issues.push(`${where}: a "binary" mapping finds values by "bytes", e.g. {"offset": 2, "type": "i16"}`)
      if (!source.bytes) {
        issues.push(`${where}.bytes: required with format "binary", e.g. {"offset": 2, "type": "i16", "endian": "little"}`)
        return null
      }
      return { kind: 'bytes', field: source.bytes }
    }
    if (source.bytes !== undefined) issues.push(`${where}.bytes: only for format "binary"; use "path"`)
    if (format === 'properties') {
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
      issues.push(`${where}.path: required with format "${format}" (${format === 'json' ? 'e.g. "data.temp"' : 'the key'})`)
      return null
    }
    return source.match === undefined ? { kind: 'path', path: source.path } : null
  }

  /** The rule checked against the model, or null (with its issues noted). */
  const checkRule = (where: string, rule: MappingRule, seen: Map<string, string>, forCommand: boolean, format?: string): ValidRule | null => {
    const source = checkSource(where, rule, format)
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
      // The way back must give every value an owner may set a device value, or the command could not be sent.
      if (forCommand) {
        const missing = cap.kind === 'boolean' ? [true, false].filter((v) => !deviceValueOf.has(v))
          : cap.kind === 'enum' ? cap.enum!.filter((v) => !deviceValueOf.has(v))
            : []
        if (missing.length > 0) issues.push(`${where}.map: no device value for ${missing.map((v) => JSON.stringify(v)).join(', ')}; an owner may set ${cap.name} to ${missing.length === 1 ? 'it' : 'them'}, so the map needs one for each`)
        if (cap.kind === 'number' || cap.kind === 'string') issues.push(`${where}.map: ${cap.name} takes any ${cap.kind === 'number' ? 'number in its range' : 'text'}, but the map gives device values for only ${deviceValueOf.size}; drop the map or declare the capability as an enum`)
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
    if (ts.zone !== undefined && ts.unit !== 'iso') issues.push('timestamp.zone: only for unit "iso" (epoch time has no zone)')
    timestamp = source && { source, unit: ts.unit, zone: ts.zone ?? 'UTC' }
  }

  let commands: ValidCommands | null = null
  if (mapping.commands) commands = checkCommands(mapping, mapping.commands, capabilities, issues, checkRule)

  let topics: ValidTopics | null = null
  if (mapping.topics) {
    const t = mapping.topics
    const seenTopics = new Map<string, string>()
    const telemetry = t.telemetry.map((entry, i) => {
      const where = `topics.telemetry[${i}]`
      const earlier = seenTopics.get(entry.topic)
      if (earlier) issues.push(`${where}.topic: ${entry.topic} is already read by ${earlier}`)
      seenTopics.set(entry.topic, where)
      if (entry.topic.includes('{key}')) issues.push(`${where}.topic: {key} is for the commands topic only`)
      let rule: ValidRule | null = null
      if (entry.value) {
        // Checked as a key/value rule would be, then read from the whole payload.
        const checked = checkRule(`${where}.value`, { ...entry.value, path: '_' }, new Map(), false, 'keyvalue')
        rule = checked && { ...checked, source: { kind: 'text' } }
      }
      return { parts: topicParts(entry.topic), rule }
    })
    if (t.commands !== undefined && !mapping.commands) issues.push('topics.commands: the mapping has no "commands" to send there')
    if (t.commands?.includes('{key}') && commands && commands.messages !== 'each' && commands.set.length > 1) {
      issues.push('topics.commands: {key} names one value\'s topic, so each value needs its own message; set commands.messages to "each"')
    }
    topics = { telemetry, commands: t.commands ?? null }
  }

  const gateway = mapping.gateway ?? null
  if (mapping.readings.length === 0 && !gateway) issues.push('readings: at least one rule (only a gateway\'s mapping may have none, its children\'s models reading their values)')
  if (gateway) {
    if (mapping.format !== 'json') issues.push(`gateway: a gateway's message is JSON; use format "json", not "${mapping.format}"`)
    if (overlaps(gateway.child, gateway.payload)) issues.push(`gateway.payload: ${gateway.payload} and gateway.child ${gateway.child} are one place in an entry; give the child's id and its payload their own paths`)
    if (mapping.commands) issues.push('gateway: a gateway\'s mapping takes no "commands" (commands to its children are not supported yet); drop "commands"')
  }

  const layout = layoutOf(mapping)
  if (issues.length > 0 || !layout) throw new MappingError(issues)
  return { mapping, layout, readings, timestamp, commands, topics, gateway }
}

function validOnly (rules: Array<ValidRule | null>): ValidRule[] {
  return rules.filter((r): r is ValidRule => r !== null)
}

/** The payload's layout; null for a property list that does not say how items are identified (an issue already). */
function layoutOf (mapping: Mapping): PayloadLayout | null {
  switch (mapping.format) {
    case 'json': return { format: 'json' }
    case 'keyvalue': return { format: 'keyvalue', separator: mapping.keyValue?.separator ?? ';', assign: mapping.keyValue?.assign ?? '=' }
    case 'binary': return { format: 'binary', encoding: mapping.binary?.encoding ?? 'raw' }
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

type RuleChecker = (where: string, rule: MappingRule, seen: Map<string, string>, forCommand: boolean, format?: string) => ValidRule | null

/** Whether two paths write one place: the same path, or one inside the other (`cmd` and `cmd.op`). */
function overlaps (a: string, b: string): boolean {
  if (a === b) return true
  const [short, long] = a.length < b.length ? [a, b] : [b, a]
  return long.startsWith(short) && (long[short.length] === '.' || long[short.length] === '[')
}

/**
 * The commands part checked: its layout resolved from its own format (or the
 * telemetry's), and refused when two rules write one place, a value cannot be
 * written back, or a rule names a command the hub never sends.
 */
function checkCommands (mapping: Mapping, c: CommandMapping, capabilities: readonly ModelCapability[], issues: string[], checkRule: RuleChecker): ValidCommands {
  // Binary sensors that take commands at all mostly take JSON or text: JSON unless the mapping says otherwise.
  const format = c.format ?? (mapping.format === 'keyvalue' ? 'keyvalue' : mapping.format === 'properties' ? 'properties' : 'json')
  if (c.keyValue && format !== 'keyvalue') issues.push(`commands.keyValue: only for commands.format "keyvalue", not "${format}"`)
  if (c.template !== undefined && format !== 'template') issues.push(`commands.template: only for commands.format "template", not "${format}"`)
  if (c.pairs && format !== 'json') issues.push(`commands.pairs: only for commands.format "json", not "${format}"`)
  if (format !== 'template' && c.id === undefined) issues.push('commands.id: required: where the command id goes (a key for keyvalue), so that the ack can carry it back')
  if (format === 'template' && c.id !== undefined) issues.push('commands.id: a template places the command id with {id}; drop "id"')

  let layout: CommandLayout
  switch (format) {
    case 'properties':
      if (mapping.properties && !mapping.properties.list) issues.push('properties.list: commands need the list inside an object, next to the command id, e.g. "params"')
      layout = { format, list: mapping.properties?.list ?? '', keys: mapping.properties?.keys ?? [], value: mapping.properties?.value ?? 'value' }
      break
    case 'keyvalue': {
      const kv = c.keyValue ?? mapping.keyValue
      layout = { format, separator: kv?.separator ?? ';', assign: kv?.assign ?? '=' }
      break
    }
    case 'template':
      if (c.template === undefined) issues.push('commands.template: required with commands.format "template", e.g. "SET {key} {value} #{id}"')
      layout = { format, template: c.template ?? '' }
      break
    default:
      layout = { format: 'json', pairs: c.pairs ? { list: c.pairs.list, key: c.pairs.key, value: c.pairs.value } : null }
  }
  const messages = c.messages ?? (format === 'template' ? 'each' : 'one')
  if (format === 'template' && messages !== 'each') issues.push('commands.messages: a template is one message per value; drop "messages" or make it "each"')

  const seen = new Map<string, string>()
  const set = c.set.map((rule, i) => checkRule(`commands.set[${i}]`, rule, seen, true, format)).filter((r): r is ValidRule => r !== null)

  // Two rules writing one place: the second value would overwrite the first, or a constant, or the id.
  const written: Array<{ path: string, by: string }> = []
  const claim = (path: string, by: string, exact: boolean) => {
    const earlier = written.find((w) => exact ? w.path === path : overlaps(w.path, path))
    if (earlier) issues.push(`${by}: writes ${path}, which ${earlier.by} writes too; give each value its own ${exact ? 'key' : 'path'}`)
    else written.push({ path, by })
  }
  const exact = format !== 'json'
  if (format === 'template') {
    const used = new Set([...(c.template ?? '').matchAll(/\{([a-z]+)\}/g)].map((m) => m[1]))
    for (const name of used) if (!(templatePlaceholders as readonly string[]).includes(name)) issues.push(`commands.template: unknown placeholder {${name}}; use {id}, {key} or {value}`)
    if (c.set.length > 0 && !used.has('value')) issues.push('commands.template: has no {value}, so a set command could not say its value')
    if (c.set.length > 1 && !used.has('key')) issues.push(`commands.template: has no {key}, so ${c.set.map((_, i) => `commands.set[${i}]`).join(' and ')} would send the same message`)
    if (c.fields) issues.push('commands.fields: a template writes its constants itself; drop "fields"')
    if (c.actions && Object.keys(c.actions).length > 0) issues.push('commands.actions: a template sends set values only; use commands.format "json" or "keyvalue" for actions')
  } else {
    if (c.id !== undefined) claim(c.id, 'commands.id', exact)
    for (const path of Object.keys(c.fields ?? {})) claim(path, `commands.fields.${path}`, exact)
  }
  const base = written.length
  if (format === 'json' && c.pairs) {
    claim(c.pairs.list ?? c.pairs.key, c.pairs.list !== undefined ? 'commands.pairs.list' : 'commands.pairs.key', false)
    if (c.pairs.list === undefined) claim(c.pairs.value, 'commands.pairs.value', false)
    else if (overlaps(c.pairs.key, c.pairs.value)) issues.push(`commands.pairs.value: writes ${c.pairs.value} in each item, which commands.pairs.key writes too`)
    const keys = new Map<string, string>()
    c.set.forEach((rule, i) => {
      if (rule.path === undefined) return
      const earlier = keys.get(rule.path)
      if (earlier) issues.push(`commands.set[${i}].path: key ${rule.path} is already sent by ${earlier}; give each value its own key`)
      keys.set(rule.path, `commands.set[${i}]`)
    })
    if (c.pairs.list === undefined && messages === 'one' && c.set.length > 1) {
      issues.push(`commands.pairs: without "list", two set values in one message would both write ${c.pairs.key} and ${c.pairs.value}; add "messages": "each" or a "list"`)
    }
  } else if (format === 'properties') {
    const items = new Map<string, string>()
    c.set.forEach((rule, i) => {
      if (!rule.match) return
      const key = JSON.stringify(Object.entries(rule.match).sort(([a], [b]) => a.localeCompare(b)))
      const earlier = items.get(key)
      if (earlier) issues.push(`commands.set[${i}].match: the item ${JSON.stringify(rule.match)} is already written by ${earlier}`)
      items.set(key, `commands.set[${i}]`)
    })
  } else if (format === 'template') {
    const keys = new Map<string, string>()
    c.set.forEach((rule, i) => {
      if (rule.path === undefined) return
      const earlier = keys.get(rule.path)
      if (earlier) issues.push(`commands.set[${i}].path: key ${rule.path} is already sent by ${earlier}; give each value its own key`)
      keys.set(rule.path, `commands.set[${i}]`)
    })
  } else {
    c.set.forEach((rule, i) => { if (rule.path !== undefined) claim(rule.path, `commands.set[${i}].path`, exact) })
  }
  // An action's message holds the id and constants, not set values: check it against those only.
  written.length = base
  const offered = actionsOf(capabilities.map((cap) => cap.name))
  for (const [name, action] of Object.entries(c.actions ?? {})) {
    const where = `commands.actions.${name}`
    if (!isActionName(name) || !offered.includes(name)) {
      issues.push(`${where}: the model offers no action ${name}, so the hub never sends it; its actions: ${offered.join(', ')}`)
      continue
    }
    const shape = (actions[name].params as unknown as { shape?: Record<string, unknown> }).shape ?? {}
    for (const param of Object.keys(action.params ?? {})) {
      if (!Object.hasOwn(shape, param)) issues.push(`${where}.params.${param}: action ${name} has no param ${param}${Object.keys(shape).length > 0 ? `; its params: ${Object.keys(shape).join(', ')}` : '; it takes none'}`)
    }
    const mark = written.length
    for (const path of Object.keys(action.fields)) claim(path, `${where}.fields.${path}`, exact)
    for (const [param, path] of Object.entries(action.params ?? {})) claim(path, `${where}.params.${param}`, exact)
    written.length = mark
  }

  const ackFormat = c.ack.format ?? (format === 'keyvalue' ? 'keyvalue' : 'json')
  if (c.ack.keyValue && ackFormat !== 'keyvalue') issues.push(`commands.ack.keyValue: only for ack.format "keyvalue", not "${ackFormat}"`)
  const ackKv = c.ack.keyValue ?? (layout.format === 'keyvalue' ? layout : undefined)
  const ackLayout: ValidAck['layout'] = ackFormat === 'keyvalue' ? { format: 'keyvalue', separator: ackKv?.separator ?? ';', assign: ackKv?.assign ?? '=' } : { format: 'json' }
  const ackId = c.ack.id ?? c.id
  const report = c.ack.report ?? false
  if (ackId === undefined && !report) issues.push('commands.ack.id: required with a template: where the ack carries the command id back (or "report": true when the device confirms by reporting its state)')
  if (report && (c.ack.id !== undefined || c.ack.status !== undefined || c.ack.error !== undefined || c.ack.state !== undefined)) issues.push('commands.ack: with "report": true the device sends no ack; drop id, status, error and state')
  if (report && c.actions && Object.keys(c.actions).length > 0) issues.push('commands.actions: a device that confirms by reporting its state can confirm only set values; drop the actions or give it acks')
  const ack: ValidAck = { layout: ackLayout, id: ackId ?? '', status: c.ack.status ?? null, error: c.ack.error ?? null, state: c.ack.state ?? false, report }
  return { layout, messages, id: format === 'template' ? null : c.id ?? '', fields: c.fields ?? {}, set, actions: c.actions ?? {}, ack }
}
