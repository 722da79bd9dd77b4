import {
  findConversion,
  type Ack, type CapabilityName, type Command, type DeviceScalar, type ReadingValue, type ValidMapping, type ValidRule,
} from '@trellis/device-sdk'
import { chain, ConversionError, describeValue, inverseScaleOffset, inverseValueMap, unitFromCanonical, type Converter } from './converters.js'
import { parseJson, payloadParser, readerOf } from './payload.js'
import { place, splitPath, type Segment } from './paths.js'

/** A canonical command that this model's mapping has no way to say. */
export class CommandEncodeError extends Error {}

/** Where a value goes (a JSON path, or a key for keyvalue). */
interface Placement { path: string, segments: readonly Segment[], value: unknown }

const placementsOf = (fields: Readonly<Record<string, unknown>>): Placement[] =>
  Object.entries(fields).map(([path, value]) => ({ path, segments: splitPath(path), value }))

/** Canonical value → device value for one `set` rule: the inverse of its reading conversion. */
function setConverter ({ rule, capability: cap }: ValidRule, modelName: string): (value: ReadingValue) => DeviceScalar {
  const conversion = rule.unit !== undefined && cap.unit !== undefined ? findConversion(rule.unit, cap.unit) : undefined
  const scaled = rule.scale !== undefined || rule.offset !== undefined ? inverseScaleOffset(rule.scale ?? 1, rule.offset ?? 0) : null
  const steps: Converter[] = []
  if (rule.map) steps.push(inverseValueMap(rule.map))
  else if (cap.kind === 'number') {
    if (conversion?.unit === 'hh:mm:ss') steps.push(...(scaled ? [scaled] : []), unitFromCanonical(conversion))
    else steps.push(...(conversion ? [unitFromCanonical(conversion)] : []), ...(scaled ? [scaled] : []))
  }
  const convert = steps.length > 0 ? chain(steps) : (value: unknown) => value
  return (value) => {
    try {
      return convert(value) as DeviceScalar
    } catch (err) {
      if (err instanceof ConversionError) throw new CommandEncodeError(`${cap.name} ${err.message} of model ${modelName}`)
      throw err
    }
  }
}

/** One message a command becomes: the id its ack carries, and its bytes. */
export interface DeviceMessage {
  readonly id: string
  readonly payload: Buffer
  /** The set rule's `path` of the one value it carries (`{key}` of a commands topic); absent for several or none. */
  readonly key?: string
  /** The canonical values it sets: what a state report must show to acknowledge it (`ack.report`). */
  readonly sets: Readonly<Record<string, ReadingValue>>
}

/** A set value on its way out: the rule's key or path, and the device value. */
interface SetValue { path: string, segments: readonly Segment[], source: ValidRule['source'], value: DeviceScalar, capability: string, canonical: ReadingValue }

/**
 * Command → device messages, by the mapping's `commands`: id, constant
 * fields, the action's fields and params, or `set` values, in the commands'
 * own format. With `messages: "each"` a set command becomes one message per
 * value, with ids `<command id>.<n>`.
 */
export function commandEncoder (valid: ValidMapping, modelName: string): (command: Command) => DeviceMessage[] {
  const commands = valid.commands
  if (!commands) return () => { throw new CommandEncodeError(`model ${modelName} declares no command mapping, so its devices take no commands`) }
  const layout = commands.layout
  const setters = new Map(commands.set.map((v) => [v.capability.name, {
    toDevice: setConverter(v, modelName),
    source: v.source,
    path: v.source.kind === 'path' ? v.source.path : '',
    segments: v.source.kind === 'path' ? splitPath(v.source.path) : [],
  }]))
  const idPlacement = commands.id === null ? null : { path: commands.id, segments: splitPath(commands.id) }
  const fields = placementsOf(commands.fields)
  const actions = new Map(Object.entries(commands.actions).map(([name, action]) => [name, {
    fields: placementsOf(action.fields),
    params: new Map(Object.entries(action.params ?? {}).map(([param, path]) => [param, { path, segments: splitPath(path) }])),
  }]))
  const listSegments = layout.format === 'properties' && layout.list ? splitPath(layout.list) : []
  const pairs = layout.format === 'json' && layout.pairs
    ? { list: layout.pairs.list === undefined ? null : splitPath(layout.pairs.list), key: splitPath(layout.pairs.key), value: splitPath(layout.pairs.value) }
    : null
  const takes = () => [
    ...(setters.size > 0 ? [`"set" of ${[...setters.keys()].join(', ')}`] : []),
    ...(actions.size > 0 ? [`the actions ${[...actions.keys()].join(', ')}`] : []),
  ].join(' and ')

  const actionPlacements = (command: Command): Placement[] => {
    if (!command.action) return []
    const action = actions.get(command.action)
    if (!action) throw new CommandEncodeError(`model ${modelName} has no action ${command.action}; it takes ${takes()}`)
    const out = [...action.fields]
    for (const [param, value] of Object.entries(command.params ?? {})) {
      const target = action.params.get(param)
      if (!target) throw new CommandEncodeError(`action ${command.action} of model ${modelName} takes ${action.params.size > 0 ? `the params ${[...action.params.keys()].join(', ')}` : 'no params'}, not ${param}`)
      if (value === null || typeof value === 'object') throw new CommandEncodeError(`param ${param} must be text, a number or a boolean`)
      out.push({ ...target, value })
    }
    return out
  }

  const json = (doc: Record<string, unknown>, placements: readonly Placement[]): Buffer => {
    try {
      for (const p of placements) place(doc, p.segments, p.value)
    } catch (err) {
      if (err instanceof RangeError) throw new CommandEncodeError(`the mapping of model ${modelName} cannot be used for commands: ${err.message}; replace it`)
      throw err
    }
    return Buffer.from(JSON.stringify(doc))
  }

  /** One message: its id, the constants (and action) placements, and the set values it carries. */
  const message = (id: string, placements: Placement[], values: readonly SetValue[]): DeviceMessage => {
    const sets: Record<string, ReadingValue> = {}
    for (const v of values) sets[v.capability] = v.canonical
    return { ...written(id, placements, values), ...(values.length === 1 && { key: values[0].path }), sets }
  }
  const written = (id: string, placements: Placement[], values: readonly SetValue[]): { id: string, payload: Buffer } => {
    switch (layout.format) {
      case 'template': {
        const v = values[0]
        return { id, payload: Buffer.from(layout.template.replace(/\{(id|key|value)\}/g, (_m, name: string) => name === 'id' ? id : name === 'key' ? v?.path ?? '' : v === undefined ? '' : String(v.value))) }
      }
      case 'keyvalue': {
        const all = [...placements, ...values]
        return { id, payload: Buffer.from(all.map((p) => `${p.path}${layout.assign}${String(p.value)}`).join(layout.separator)) }
      }
      case 'properties': {
        const items = values.map((v) => v.source.kind === 'match' ? { ...v.source.match, [layout.value]: v.value } : {})
        return { id, payload: json({}, items.length > 0 ? [...placements, { path: layout.list, segments: listSegments, value: items }] : placements) }
      }
      case 'json': {
        if (!pairs) return { id, payload: json({}, [...placements, ...values]) }
        if (pairs.list === null) {
          // Flat pairs: one value per message, as parseMapping ensures.
          const v = values[0]
          return { id, payload: json({}, v ? [...placements, { path: '', segments: pairs.key, value: v.path }, { path: '', segments: pairs.value, value: v.value }] : placements) }
        }
        const items = values.map((v) => {
          const item: Record<string, unknown> = {}
          place(item, pairs.key, v.path)
          place(item, pairs.value, v.value)
          return item
        })
        return { id, payload: json({}, items.length > 0 ? [...placements, { path: '', segments: pairs.list, value: items }] : placements) }
      }
    }
  }

  return (command) => {
    const head = (id: string): Placement[] => [...(idPlacement ? [{ ...idPlacement, value: id }] : []), ...fields]
    const extra = actionPlacements(command)
    const values: SetValue[] = []
    for (const [name, value] of Object.entries(command.set ?? {})) {
      const setter = setters.get(name as CapabilityName)
      if (!setter) throw new CommandEncodeError(`model ${modelName} has no command for ${name}; it takes ${takes()}`)
      values.push({ path: setter.path, segments: setter.segments, source: setter.source, value: setter.toDevice(value), capability: name, canonical: value })
    }
    if (extra.length === 0 && values.length === 0) throw new CommandEncodeError(`the command neither sets anything nor names an action; model ${modelName} takes ${takes()}`)
    if (commands.messages === 'each' && values.length > 0) return values.map((v, i) => message(`${command.id}.${i + 1}`, head(`${command.id}.${i + 1}`), [v]))
    return [message(command.id, [...head(command.id), ...extra], values)]
  }
}

/** Device ack → canonical Ack, by `commands.ack`; `stateOf` reads the readings an ack carries when `ack.state` says so. */
export function ackDecoder (
  valid: ValidMapping,
  stateOf: (payload: Buffer) => Record<string, ReadingValue> | null,
  modelName: string,
): (payload: Buffer) => { ok: true, ack: Ack } | { ok: false, reason: string } {
  const commands = valid.commands
  if (!commands) return () => ({ ok: false, reason: `model ${modelName} declares no command mapping, so it has no acks` })
  const { ack } = commands
  const layout = ack.layout
  const pathReader = (path: string) => readerOf(layout, { kind: 'path', path }).read
  const readId = pathReader(ack.id)
  const status = ack.status && { read: pathReader(ack.status.path), path: ack.status.path, ok: new Set(ack.status.ok.map(String)) }
  const readError = ack.error !== null ? pathReader(ack.error) : null
  // An ack of a property-list model is a plain JSON object (the list is for telemetry and commands).
  const parseAck = layout.format === 'keyvalue' ? payloadParser(layout) : (payload: Buffer) => parseJson(payload.toString('utf8'), 'ack')

  return (payload) => {
    const parsed = parseAck(payload)
    if (!parsed.ok) return parsed
    const id = readId(parsed)
    if (id === undefined || id === null || typeof id === 'object' || String(id) === '') return { ok: false, reason: `ack has no command id at ${ack.id}` }
    const answered = status ? status.read(parsed) : undefined
    if (!status || (answered !== undefined && status.ok.has(String(answered)))) {
      const state = ack.state ? stateOf(payload) : null
      return { ok: true, ack: { id: String(id), status: 'ok', ...(state && { state }) } }
    }
    const detail = readError?.(parsed)
    const error = detail !== undefined && detail !== null && typeof detail !== 'object'
      ? String(detail).slice(0, 512)
      : `the device answered ${status.path}=${describeValue(answered)}`
    return { ok: true, ack: { id: String(id), status: 'error', error } }
  }
}
