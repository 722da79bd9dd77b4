import {
  checkValue, findConversion, toEpochMs, topicMatches, topicParts, topics,
  type Ack, type Command, type ReadingValue, type TimestampUnit, type ValidMapping, type ValidRule,
} from '@trellis/device-sdk'
import type { NormalizeResult, Reading } from './result.js'
import { ackDecoder, CommandEncodeError, commandEncoder, type DeviceMessage } from './command-mapping.js'
import { chain, ConversionError, describeValue, scaleOffset, toBoolean, toNumber, toText, unitToCanonical, valueMap, type Converter } from './converters.js'
import { gatewayReader, type GatewayEntries } from './gateway.js'
import { payloadParser, readerOf, textParser, type Parsed, type ParsedPayload, type Reader } from './payload.js'

export { CommandEncodeError, type DeviceMessage } from './command-mapping.js'

/**
 * A mapping compiled once per model: paths split, conversions looked up and
 * rules turned into closures, so the hot path only walks and converts.
 */
export interface CompiledMapping {
  /** The mapping it was compiled from; null when the stored mapping no longer parses. */
  readonly source: ValidMapping['mapping'] | null
  /** `zone`: the device's own time zone, read for local times before the mapping's; null or absent for none. */
  decodeTelemetry (payload: Buffer, now: number, zone?: string | null): NormalizeResult
  /** The messages a command becomes, in order; throws a CommandEncodeError naming what the mapping cannot express. */
  encodeCommand (command: Command): DeviceMessage[]
  decodeAck (payload: Buffer): { ok: true, ack: Ack } | { ok: false, reason: string }
  /** The device's own topics, when the mapping declares them; null for the canonical tree. */
  readonly topics: MappedTopics | null
  /** True when its devices confirm commands by reporting the new state instead of acking (`ack.report`). */
  readonly acksByReport: boolean
  /** A gateway's message split into its children's entries; null for a device that is no gateway. */
  readonly gateway: ((payload: Buffer) => GatewayEntries) | null
  /** Whether the mapping reads readings of its own device (a gateway's may read none). */
  readonly ownReadings: boolean
}

/** A mapping's topic tree, matched against a device's id without building its topics. */
export interface MappedTopics {
  /** Whether the device may publish on `topic` (one of its telemetry topics). */
  publishes (deviceId: string, topic: string): boolean
  /** Whether `topic` is one of the device's command topics. */
  receives (deviceId: string, topic: string): boolean
  /** Whether the device may subscribe to `filter`: a command topic, or a wildcard under its own command level (`cmnd/{device}/#`). */
  subscribes (deviceId: string, filter: string): boolean
  /** The topic a command message goes to; `key` fills `{key}`. */
  commandTopic (deviceId: string, key: string | undefined): string
  /** The readings of a message on one of the device's telemetry topics; null when the topic is not one. */
  decode (deviceId: string, topic: string, payload: Buffer, now: number, zone?: string | null): NormalizeResult | null
}

type Converted = { ok: true, value: ReadingValue } | { ok: false, problem: string }

/** A reading rule ready to run: where it reads, and how its value becomes canonical. */
export interface ReadingStep {
  readonly capability: ValidRule['capability']['name']
  readonly read: Reader
  readonly label: string
  readonly where: string
  readonly convert: (raw: unknown) => Converted
}

/** The converter chain of a reading rule, from the shared converters, then the capability's own check. */
export function readingConverter ({ rule, capability: cap }: ValidRule, modelName: string): (raw: unknown) => Converted {
  const steps: Converter[] = []
  const conversion = rule.unit !== undefined && cap.unit !== undefined ? findConversion(rule.unit, cap.unit) : undefined
  const scaled = rule.scale !== undefined || rule.offset !== undefined ? scaleOffset(rule.scale ?? 1, rule.offset ?? 0) : null
  if (rule.map) steps.push(valueMap(rule.map))
  else if (cap.kind === 'number') {
    // A clock text must become seconds before it can be scaled; numbers are scaled in the device's unit.
    if (conversion?.unit === 'hh:mm:ss') steps.push(unitToCanonical(conversion), ...(scaled ? [scaled] : []))
    else steps.push(toNumber, ...(scaled ? [scaled] : []), ...(conversion ? [unitToCanonical(conversion)] : []))
  } else steps.push(cap.kind === 'boolean' ? toBoolean : toText)
  const convert = chain(steps)
  return (raw) => {
    let value: ReadingValue
    try {
      value = convert(raw) as ReadingValue
    } catch (err) {
      if (err instanceof ConversionError) return { ok: false, problem: err.message }
      throw err
    }
    const problem = checkValue(cap, value, modelName)
    return problem ? { ok: false, problem } : { ok: true, value }
  }
}

export function readingSteps (valid: ValidMapping, modelName: string): ReadingStep[] {
  return valid.readings.map((v) => {
    const { read, label } = readerOf(valid.layout, v.source)
    return { capability: v.capability.name, read, label, where: `${v.where} (${label} → ${v.capability.name})`, convert: readingConverter(v, modelName) }
  })
}

/**
 * Reads the device's clock from a parsed payload: epoch ms, or the arrival
 * time when absent. A local time is read in the device's `zone` when it has
 * one, else in the mapping's. Throws a RangeError with the reason for a clock
 * it cannot read (the decoder words it), so a good timestamp allocates nothing.
 */
export function timestampReader (valid: ValidMapping): (p: Parsed, now: number, zone?: string | null) => number {
  if (!valid.timestamp) return arrivalTime
  const { read, label } = readerOf(valid.layout, valid.timestamp.source)
  const unit = valid.timestamp.unit
  const local = localTimeReader(valid.timestamp.zone)
  return (p, now, zone) => {
    const raw = read(p)
    if (raw === undefined || raw === null) return now
    const wire = wireTimestamp(raw, unit, label)
    return toEpochMs(typeof wire === 'string' ? (zone ? zonedReader(zone) : local)(wire) ?? wire : wire, now)
  }
}

function arrivalTime (_p: Parsed, now: number): number {
  return now
}

/**
 * Local-time readers of devices' own zones, one per zone for the process: a
 * device's reading costs a lookup, never a new Intl.DateTimeFormat. Zones are
 * stored as the zone database spells them, so the map holds at most its few
 * hundred names; the bound is for a zone written to the registry by hand.
 */
const zonedReaders = new Map<string, (text: string) => number | undefined>()
const maxZonedReaders = 1000

function zonedReader (zone: string): (text: string) => number | undefined {
  let reader = zonedReaders.get(zone)
  if (reader === undefined) {
    reader = localTimeReader(zone)
    if (zonedReaders.size < maxZonedReaders) zonedReaders.set(zone, reader)
  }
  return reader
}

/** `2026-11-18T08:00:00[.250]` or with a space, minutes at least, and no zone. */
const localTime = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?$/

/**
 * Reads local time without an offset in `zone`, as epoch ms; undefined for
 * text that carries its own zone (left to the ISO parser). Never the hub's
 * own time zone: Date.parse would read `2026-11-18T08:00:00` in it.
 */
export function localTimeReader (zone: string): (text: string) => number | undefined {
  const format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
  /** How far `zone` is ahead of UTC at the instant `ms`, asked of the zone database (some 10 µs). */
  const exactOffsetAt = (ms: number): number => {
    const f: Record<string, number> = {}
    for (const part of format.formatToParts(ms)) if (part.type !== 'literal') f[part.type] = Number(part.value)
    return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second) - Math.floor(ms / 1000) * 1000
  }
  // A device's readings arrive minutes apart, so the offsets of recent quarter hours are kept:
  // one that holds from a quarter hour's first second to its last holds throughout (offsets
  // change at most once in 15 minutes), and one that changes within it is asked each time.
  const quarterMs = 900_000
  const offsets = new Map<number, number>()
  const offsetAt = (ms: number): number => {
    const quarter = Math.floor(ms / quarterMs)
    const known = offsets.get(quarter)
    if (known !== undefined) return known
    const start = quarter * quarterMs
    const first = exactOffsetAt(start)
    if (first !== exactOffsetAt(start + quarterMs - 1000)) return exactOffsetAt(ms)
    if (offsets.size >= 64) offsets.clear()
    offsets.set(quarter, first)
    return first
  }
  return (text) => {
    // Local time ends in a digit; most clocks send a zone (`…Z`), which skips the regex.
    const last = text.charCodeAt(text.length - 1)
    if (!(last >= 0x30 && last <= 0x39)) return undefined
    const m = localTime.exec(text)
    if (!m) return undefined
    const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), Number((m[7] ?? '0').padEnd(3, '0')))
    if (zone === 'UTC') return wall
    // The offset at the wall time read as UTC is right but near a change of offset; one more step settles it.
    const first = wall - offsetAt(wall)
    return wall - offsetAt(first)
  }
}

function wireTimestamp (raw: unknown, unit: TimestampUnit, label: string): number | string {
  if (unit === 'iso') {
    if (typeof raw !== 'string') throw new RangeError(`timestamp at ${label} should be ISO-8601 text, got ${describeValue(raw)}`)
    return raw
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
  if (!Number.isFinite(n)) throw new RangeError(`timestamp at ${label} should be epoch ${unit === 's' ? 'seconds' : 'milliseconds'}, got ${describeValue(raw)}`)
  return Math.round(unit === 's' ? n * 1000 : n)
}

function telemetryDecoder (parse: (payload: Buffer) => ParsedPayload, timestamp: ReturnType<typeof timestampReader>, rules: readonly ReadingStep[]) {
  const lookedFor = rules.map((r) => r.label).join(', ').slice(0, 300)
  return (payload: Buffer, now: number, zone?: string | null): NormalizeResult => {
    const parsed = parse(payload)
    if (!parsed.ok) return parsed
    let ts: number
    try {
      ts = timestamp(parsed, now, zone)
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
    const readings: Reading[] = []
    const problems: string[] = []
    for (const rule of rules) {
      const raw = rule.read(parsed)
      if (raw === undefined) continue
      const converted = rule.convert(raw)
      if (converted.ok) readings.push({ capability: rule.capability, value: converted.value })
      else problems.push(`${rule.where}: ${converted.problem}`)
    }
    if (readings.length === 0 && problems.length === 0) return { ok: false, reason: `none of the mapped values is in the payload (looked for ${lookedFor})` }
    return { ok: true, value: { ts, readings, problems } }
  }
}

/** The readings an ack carries, read by the telemetry rules; values that do not convert are left out. */
function ackState (parse: (payload: Buffer) => ParsedPayload, rules: readonly ReadingStep[]) {
  return (payload: Buffer): Record<string, ReadingValue> | null => {
    const parsed = parse(payload)
    if (!parsed.ok) return null
    let state: Record<string, ReadingValue> | null = null
    for (const rule of rules) {
      const raw = rule.read(parsed)
      if (raw === undefined) continue
      const converted = rule.convert(raw)
      if (converted.ok) (state ??= {})[rule.capability] = converted.value
    }
    return state
  }
}

/** The topic tree of a mapping, compiled: each telemetry topic with its decoder, and the commands' topic. */
function mappedTopics (valid: ValidMapping, decodeTelemetry: CompiledMapping['decodeTelemetry'], modelName: string): MappedTopics | null {
  const tree = valid.topics
  if (!tree) return null
  const telemetry = tree.telemetry.map(({ parts, rule }) => {
    if (!rule) return { parts, decode: decodeTelemetry }
    const { read, label } = readerOf(valid.layout, rule.source)
    return { parts, decode: telemetryDecoder(textParser, arrivalTime, [{ capability: rule.capability.name, read, label, where: `${rule.where} (${label} → ${rule.capability.name})`, convert: readingConverter(rule, modelName) }]) }
  })
  const commands = tree.commands ?? null
  // The levels before {device} and {device} itself: what a wildcard subscription must start with.
  const commandParts = commands === null ? null : topicParts(commands)
  const keyed = commands !== null && commands.includes('{key}')
  const commandKeys = valid.commands?.set.map((r) => r.source.kind === 'path' ? r.source.path : '') ?? []
  const commandTopic = (deviceId: string, key: string | undefined) => commands === null
    ? topics.commands(deviceId)
    : commands.replace('{device}', deviceId).replace('{key}', key ?? '')
  return {
    publishes: (deviceId, topic) => telemetry.some((t) => topicMatches(t.parts, deviceId, topic)),
    receives: (deviceId, topic) => commands !== null && (keyed ? commandKeys.some((k) => topic === commandTopic(deviceId, k)) : topicMatches(commandParts!, deviceId, topic)),
    subscribes (deviceId, filter) {
      if (commandParts === null) return false
      if (this.receives(deviceId, filter)) return true
      const own = `${commandParts.prefix}${deviceId}/`
      return filter === `${own}#` || (keyed && filter === `${own}+` && commandParts.suffix === '/{key}')
    },
    commandTopic,
    decode (deviceId, topic, payload, now, zone) {
      for (const t of telemetry) if (topicMatches(t.parts, deviceId, topic)) return t.decode(payload, now, zone)
      return null
    },
  }
}

/** Compiles a mapping that parseMapping checked against the model: telemetry in, commands out, acks in. */
export function compileMapping (valid: ValidMapping, modelName: string): CompiledMapping {
  const parse = payloadParser(valid.layout)
  const readings = readingSteps(valid, modelName)
  const decodeTelemetry = telemetryDecoder(parse, timestampReader(valid), readings)
  return {
    source: valid.mapping,
    topics: mappedTopics(valid, decodeTelemetry, modelName),
    acksByReport: valid.commands?.ack.report ?? false,
    gateway: valid.gateway ? gatewayReader(valid.gateway) : null,
    ownReadings: valid.readings.length > 0,
    decodeTelemetry,
    encodeCommand: commandEncoder(valid, modelName),
    decodeAck: ackDecoder(valid, ackState(parse, readings), modelName),
  }
}

/**
 * Stands in for a stored mapping that no longer parses (written by an older
 * hub, or edited in the database): the model's payloads are dead-lettered
 * with the reason instead of its devices being locked out.
 */
export function invalidMapping (modelId: string, modelName: string, problem: string): CompiledMapping {
  const reason = `the stored mapping of model ${modelName} is not valid (${problem}); replace it with PUT /v1/models/${modelId}/mapping`
  return {
    source: null,
    decodeTelemetry: () => ({ ok: false, reason }),
    encodeCommand: () => { throw new CommandEncodeError(reason) },
    decodeAck: () => ({ ok: false, reason }),
    topics: null,
    acksByReport: false,
    gateway: null,
    ownReadings: true,
  }
}
