import {
  checkValue, findConversion, toEpochMs,
  type Ack, type CapabilityName, type Command, type DeviceScalar, type Mapping, type MappingRule, type ModelCapability, type ReadingValue,
} from '@trellis/device-sdk'
import type { NormalizeResult } from './canonical.js'
import {
  chain, ConversionError, describeValue, inverseScaleOffset, inverseValueMap, scaleOffset, toBoolean, toNumber, toText,
  unitFromCanonical, unitToCanonical, valueMap, type Converter,
} from './converters.js'
import type { Reading } from './validate.js'

/**
 * A mapping compiled once per model: paths split, conversions looked up and
 * rules turned into closures, so the hot path only walks and converts.
 */
export interface CompiledMapping {
  /** The mapping it was compiled from; null when the stored mapping no longer parses. */
  readonly source: Mapping | null
  decodeTelemetry (payload: Buffer, now: number): NormalizeResult
  /** Throws a CommandEncodeError naming what the mapping cannot express. */
  encodeCommand (command: Command): Buffer
  decodeAck (payload: Buffer): { ok: true, ack: Ack } | { ok: false, reason: string }
}

/** A canonical command that this model's mapping has no way to say. */
export class CommandEncodeError extends Error {}

type Segment = string | number
type ParsedPayload = { ok: true, doc: unknown, pairs: Map<string, string> | null, items: Map<string, unknown> | null } | { ok: false, reason: string }
type Reader = (p: Extract<ParsedPayload, { ok: true }>) => unknown
type Converted = { ok: true, value: ReadingValue } | { ok: false, problem: string }

/** `sensors[2].value` → `['sensors', 2, 'value']` */
export function splitPath (path: string): Segment[] {
  const out: Segment[] = []
  for (const part of path.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part)!
    if (m[1]) out.push(m[1])
    for (const index of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(index[1]))
  }
  return out
}

function walk (doc: unknown, segments: readonly Segment[]): unknown {
  let node = doc
  for (const s of segments) {
    if (node === null || typeof node !== 'object') return undefined
    if (typeof s === 'number') {
      if (!Array.isArray(node)) return undefined
      node = node[s]
    } else {
      if (Array.isArray(node) || !Object.hasOwn(node, s)) return undefined
      node = (node as Record<string, unknown>)[s]
    }
  }
  return node
}

function place (doc: Record<string, unknown>, segments: readonly Segment[], value: unknown): void {
  let node: any = doc
  for (let i = 0; i < segments.length - 1; i++) {
    const s = segments[i]
    // Own properties only: never descend into a prototype (parseMapping refuses such paths too).
    if (!Object.hasOwn(node, s) || node[s] === null || typeof node[s] !== 'object') {
      Object.defineProperty(node, s, { value: typeof segments[i + 1] === 'number' ? [] : {}, enumerable: true, writable: true, configurable: true })
    }
    node = node[s]
  }
  Object.defineProperty(node, segments[segments.length - 1], { value, enumerable: true, writable: true, configurable: true })
}

function matchKey (keys: readonly string[], item: Record<string, unknown>): string {
  // Built by hand: this runs once per item of every property-list payload.
  let key = ''
  for (let i = 0; i < keys.length; i++) key += (i ? ',' : '') + keys[i] + '=' + String(item[keys[i]])
  return key
}

export function compileMapping (mapping: Mapping, capabilities: ReadonlyMap<CapabilityName, ModelCapability>, modelName: string): CompiledMapping {
  const { format } = mapping
  const kv = { separator: mapping.keyValue?.separator ?? ';', assign: mapping.keyValue?.assign ?? '=' }
  const props = mapping.properties
  const listPath = props?.list ? splitPath(props.list) : []

  const parse = (payload: Buffer): ParsedPayload => {
    const text = payload.toString('utf8')
    if (format === 'keyvalue') {
      const pairs = new Map<string, string>()
      for (const pair of text.split(kv.separator)) {
        const at = pair.indexOf(kv.assign)
        if (at > 0) pairs.set(pair.slice(0, at).trim(), pair.slice(at + kv.assign.length).trim())
      }
      return { ok: true, doc: null, pairs, items: null }
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (err) {
      return { ok: false, reason: `payload is not JSON: ${(err as Error).message}` }
    }
    if (format === 'json') return { ok: true, doc, pairs: null, items: null }
    const list = walk(doc, listPath)
    if (!Array.isArray(list)) return { ok: false, reason: `payload has no property list at ${props!.list ?? '(root)'}` }
    const items = new Map<string, unknown>()
    for (const item of list) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) items.set(matchKey(props!.keys, item as Record<string, unknown>), (item as Record<string, unknown>)[props!.value])
    }
    return { ok: true, doc, pairs: null, items }
  }

  const readerOf = (source: { path?: string, match?: Record<string, DeviceScalar> }): { read: Reader, label: string } => {
    if (source.match) {
      const key = matchKey(props!.keys, source.match)
      return { read: (p) => p.items!.get(key), label: key }
    }
    const path = source.path!
    if (format === 'keyvalue') return { read: (p) => p.pairs!.get(path), label: path }
    const segments = splitPath(path)
    return { read: (p) => walk(p.doc, segments), label: path }
  }

  /** The converter chain of a reading rule, from the shared converters. */
  const converterOf = (rule: MappingRule, cap: ModelCapability): (raw: unknown) => Converted => {
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

  const readingRules = mapping.readings.map((rule, i) => {
    const cap = capabilities.get(rule.capability)!
    const { read, label } = readerOf(rule)
    return { capability: cap.name, read, where: `readings[${i}] (${label} → ${cap.name})`, convert: converterOf(rule, cap), label }
  })

  const timestamp = mapping.timestamp && (() => {
    const ts = mapping.timestamp
    const { read } = ts.match ? readerOf(ts) : format === 'keyvalue' ? readerOf(ts) : { read: ((segments) => (p: Extract<ParsedPayload, { ok: true }>) => walk(p.doc, segments))(splitPath(ts.path!)) }
    return { read, unit: ts.unit, label: ts.path ?? JSON.stringify(ts.match) }
  })()

  const decodeTelemetry = (payload: Buffer, now: number): NormalizeResult => {
    const parsed = parse(payload)
    if (!parsed.ok) return parsed
    let ts = now
    if (timestamp) {
      const raw = timestamp.read(parsed)
      if (raw !== undefined && raw !== null) {
        try {
          let wire: number | string
          if (timestamp.unit === 'iso') {
            if (typeof raw !== 'string') throw new RangeError(`timestamp at ${timestamp.label} should be ISO-8601 text, got ${describeValue(raw)}`)
            wire = raw
          } else {
            const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
            if (!Number.isFinite(n)) throw new RangeError(`timestamp at ${timestamp.label} should be epoch ${timestamp.unit === 's' ? 'seconds' : 'milliseconds'}, got ${describeValue(raw)}`)
            wire = Math.round(timestamp.unit === 's' ? n * 1000 : n)
          }
          ts = toEpochMs(wire, now)
        } catch (err) {
          return { ok: false, reason: (err as Error).message }
        }
      }
    }
    const readings: Reading[] = []
    const problems: string[] = []
    for (const rule of readingRules) {
      const raw = rule.read(parsed)
      if (raw === undefined) continue
      const converted = rule.convert(raw)
      if (converted.ok) readings.push({ capability: rule.capability, value: converted.value })
      else problems.push(`${rule.where}: ${converted.problem}`)
    }
    if (readings.length === 0 && problems.length === 0) {
      return { ok: false, reason: `none of the mapped values is in the payload (looked for ${readingRules.map((r) => r.label).join(', ').slice(0, 300)})` }
    }
    return { ok: true, value: { ts, readings, problems } }
  }

  // --- the way back ---------------------------------------------------------

  const commands = mapping.commands
  const setRules = new Map((commands?.set ?? []).map((rule) => {
    const cap = capabilities.get(rule.capability)!
    const conversion = rule.unit !== undefined && cap.unit !== undefined ? findConversion(rule.unit, cap.unit) : undefined
    const scaled = rule.scale !== undefined || rule.offset !== undefined ? inverseScaleOffset(rule.scale ?? 1, rule.offset ?? 0) : null
    const steps: Converter[] = []
    if (rule.map) steps.push(inverseValueMap(rule.map))
    else if (cap.kind === 'number') {
      if (conversion?.unit === 'hh:mm:ss') steps.push(...(scaled ? [scaled] : []), unitFromCanonical(conversion))
      else steps.push(...(conversion ? [unitFromCanonical(conversion)] : []), ...(scaled ? [scaled] : []))
    }
    const convert = steps.length > 0 ? chain(steps) : (value: unknown) => value
    const toDevice = (value: ReadingValue): DeviceScalar => {
      try {
        return convert(value) as DeviceScalar
      } catch (err) {
        if (err instanceof ConversionError) throw new CommandEncodeError(`${cap.name} ${err.message} of model ${modelName}`)
        throw err
      }
    }
    return [cap.name, { rule, toDevice, segments: rule.path !== undefined ? splitPath(rule.path) : [] }] as const
  }))
  const idSegments = commands ? splitPath(commands.id) : []
  const fields = Object.entries(commands?.fields ?? {}).map(([path, value]) => ({ path, segments: splitPath(path), value }))

  const actions = new Map(Object.entries(commands?.actions ?? {}).map(([name, action]) => [name, {
    fields: Object.entries(action.fields).map(([path, value]) => ({ path, segments: splitPath(path), value })),
    params: new Map(Object.entries(action.params ?? {}).map(([param, path]) => [param, { path, segments: splitPath(path) }])),
  }]))
  const takes = () => [
    ...(setRules.size > 0 ? [`"set" of ${[...setRules.keys()].join(', ')}`] : []),
    ...(actions.size > 0 ? [`the actions ${[...actions.keys()].join(', ')}`] : []),
  ].join(' and ')

  /** Where each value goes (a JSON path, or a key for keyvalue), in order: id, fields, then the command's own. */
  type Placement = { path: string, segments: readonly Segment[], value: unknown }

  const encodeCommand = (command: Command): Buffer => {
    if (!commands) throw new CommandEncodeError(`model ${modelName} declares no command mapping, so its devices take no commands`)
    const placements: Placement[] = [{ path: commands.id, segments: idSegments, value: command.id }, ...fields]
    const items: Array<Record<string, unknown>> = []
    if (command.action) {
      const action = actions.get(command.action)
      if (!action) throw new CommandEncodeError(`model ${modelName} has no action ${command.action}; it takes ${takes()}`)
      placements.push(...action.fields)
      for (const [param, value] of Object.entries(command.params ?? {})) {
        const target = action.params.get(param)
        if (!target) throw new CommandEncodeError(`action ${command.action} of model ${modelName} takes ${action.params.size > 0 ? `the params ${[...action.params.keys()].join(', ')}` : 'no params'}, not ${param}`)
        if (value === null || typeof value === 'object') throw new CommandEncodeError(`param ${param} must be text, a number or a boolean`)
        placements.push({ ...target, value })
      }
    }
    for (const [name, value] of Object.entries(command.set ?? {})) {
      const setter = setRules.get(name as CapabilityName)
      if (!setter) throw new CommandEncodeError(`model ${modelName} has no command for ${name}; it takes ${takes()}`)
      const deviceValue = setter.toDevice(value)
      if (format === 'properties') items.push({ ...setter.rule.match, [props!.value]: deviceValue })
      else placements.push({ path: setter.rule.path!, segments: setter.segments, value: deviceValue })
    }
    if (placements.length === 1 + fields.length && items.length === 0) throw new CommandEncodeError(`the command neither sets anything nor names an action; model ${modelName} takes ${takes()}`)
    if (format === 'keyvalue') {
      return Buffer.from(placements.map((p) => `${p.path}${kv.assign}${String(p.value)}`).join(kv.separator))
    }
    const doc: Record<string, unknown> = {}
    for (const p of placements) place(doc, p.segments, p.value)
    if (items.length > 0) place(doc, listPath, items)
    return Buffer.from(JSON.stringify(doc))
  }

  const ack = commands?.ack
  const ackId = ack?.id ?? commands?.id
  const ackRead = (path: string): Reader => format === 'keyvalue'
    ? (p) => p.pairs!.get(path)
    : ((segments) => (p: Extract<ParsedPayload, { ok: true }>) => walk(p.doc, segments))(splitPath(path))
  const readAckId = ackId ? ackRead(ackId) : null
  const readStatus = ack?.status ? ackRead(ack.status.path) : null
  const okValues = new Set((ack?.status?.ok ?? []).map(String))
  const readError = ack?.error ? ackRead(ack.error) : null

  /** The readings an ack carries, read by the telemetry rules; values that do not convert are left out. */
  const stateOf = (payload: Buffer): Record<string, ReadingValue> | null => {
    const parsed = parse(payload)
    if (!parsed.ok) return null
    let state: Record<string, ReadingValue> | null = null
    for (const rule of readingRules) {
      const raw = rule.read(parsed)
      if (raw === undefined) continue
      const converted = rule.convert(raw)
      if (converted.ok) (state ??= {})[rule.capability] = converted.value
    }
    return state
  }

  const decodeAck = (payload: Buffer): { ok: true, ack: Ack } | { ok: false, reason: string } => {
    if (!readAckId) return { ok: false, reason: `model ${modelName} declares no command mapping, so it has no acks` }
    // An ack of a property-list model is a plain JSON object (the list is for telemetry and commands).
    let parsed: ParsedPayload
    if (format === 'keyvalue') parsed = parse(payload)
    else {
      try { parsed = { ok: true, doc: JSON.parse(payload.toString('utf8')), pairs: null, items: null } } catch (err) { parsed = { ok: false, reason: `ack is not JSON: ${(err as Error).message}` } }
    }
    if (!parsed.ok) return parsed
    const id = readAckId(parsed)
    if (id === undefined || id === null || typeof id === 'object' || String(id) === '') return { ok: false, reason: `ack has no command id at ${ackId}` }
    const status = readStatus ? readStatus(parsed) : undefined
    const ok = !readStatus || (status !== undefined && okValues.has(String(status)))
    if (ok) {
      const state = ack?.state ? stateOf(payload) : null
      return { ok: true, ack: { id: String(id), status: 'ok', ...(state && { state }) } }
    }
    const detail = readError?.(parsed)
    const error = detail !== undefined && detail !== null && typeof detail !== 'object'
      ? String(detail).slice(0, 512)
      : `the device answered ${ack!.status!.path}=${describeValue(status)}`
    return { ok: true, ack: { id: String(id), status: 'error', error } }
  }

  return { source: mapping, decodeTelemetry, encodeCommand, decodeAck }
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
  }
}
