import { z } from 'zod'

/**
 * The canonical capability catalogue: one entry per thing an appliance can
 * report or be told. Every brand's payload ends up as readings of these, in
 * these units, so owners and automations work across brands.
 */
export type CapabilityKind = 'boolean' | 'number' | 'enum' | 'string'

export interface CapabilitySpec {
  readonly kind: CapabilityKind
  /** Canonical unit, SI-flavoured; absent for booleans, enums and text. */
  readonly unit?: string
  readonly min?: number
  readonly max?: number
  /** Default enum values; a model may declare its own (required where absent). */
  readonly enum?: readonly string[]
  /** Owners may set it with a command. */
  readonly settable: boolean
  readonly description: string
}

export const catalogue = {
  power: { kind: 'boolean', settable: true, description: 'On (true) or off (false).' },
  temperature: { kind: 'number', unit: '°C', min: -50, max: 150, settable: false, description: 'Measured temperature.' },
  targetTemperature: { kind: 'number', unit: '°C', min: -30, max: 100, settable: true, description: 'Temperature setpoint.' },
  humidity: { kind: 'number', unit: '%', min: 0, max: 100, settable: false, description: 'Relative humidity.' },
  powerDraw: { kind: 'number', unit: 'W', min: 0, max: 100_000, settable: false, description: 'Instantaneous active power.' },
  energy: { kind: 'number', unit: 'kWh', min: 0, max: 10_000_000, settable: false, description: 'Cumulative energy since the meter was reset.' },
  voltage: { kind: 'number', unit: 'V', min: 0, max: 1_000, settable: false, description: 'RMS voltage.' },
  current: { kind: 'number', unit: 'A', min: 0, max: 1_000, settable: false, description: 'RMS current.' },
  battery: { kind: 'number', unit: '%', min: 0, max: 100, settable: false, description: 'Battery charge.' },
  contact: { kind: 'boolean', settable: false, description: 'Contact sensor: true when closed (door shut), false when open.' },
  motion: { kind: 'boolean', settable: false, description: 'Motion detected.' },
  waterLeak: { kind: 'boolean', settable: false, description: 'Water detected.' },
  co2: { kind: 'number', unit: 'ppm', min: 0, max: 10_000, settable: false, description: 'Carbon dioxide concentration.' },
  pm25: { kind: 'number', unit: 'µg/m³', min: 0, max: 2_000, settable: false, description: 'Fine particulate matter (PM2.5).' },
  illuminance: { kind: 'number', unit: 'lx', min: 0, max: 200_000, settable: false, description: 'Ambient light.' },
  brightness: { kind: 'number', unit: '%', min: 0, max: 100, settable: true, description: 'Light level.' },
  colorTemperature: { kind: 'number', unit: 'K', min: 1_000, max: 10_000, settable: true, description: 'White colour temperature.' },
  mode: { kind: 'enum', settable: true, description: 'Operating mode; each model declares its own values.' },
  fanSpeed: { kind: 'number', unit: '%', min: 0, max: 100, settable: true, description: 'Fan speed as a share of its maximum.' },
  lock: { kind: 'boolean', settable: true, description: 'Locked (true) or unlocked (false).' },
  cyclePhase: {
    kind: 'enum',
    enum: ['idle', 'fill', 'wash', 'rinse', 'spin', 'dry', 'done', 'paused', 'error'],
    settable: false,
    description: 'Phase of an appliance programme (washer, dryer, dishwasher).',
  },
  remainingTime: { kind: 'number', unit: 's', min: 0, max: 7 * 24 * 3600, settable: false, description: 'Time left in the running programme.' },
  rssi: { kind: 'number', unit: 'dBm', min: -150, max: 0, settable: false, description: 'Received signal strength.' },
  firmwareVersion: { kind: 'string', settable: false, description: 'Firmware version string.' },
} as const satisfies Record<string, CapabilitySpec>

export type CapabilityName = keyof typeof catalogue
export const capabilityNames = Object.keys(catalogue) as CapabilityName[]
export const CapabilityName = z.enum(capabilityNames as [CapabilityName, ...CapabilityName[]])

export function isCapabilityName (name: string): name is CapabilityName {
  return Object.hasOwn(catalogue, name)
}

/** A reading's value once validated: what InfluxDB stores in field `value`. */
export const ReadingValue = z.union([z.number(), z.boolean(), z.string()])
export type ReadingValue = z.infer<typeof ReadingValue>
export type Readings = Partial<Record<CapabilityName, ReadingValue>>

const EnumValue = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/, 'enum values are letters, digits, _ . or -')

/** How a model declares a capability: by name, or with its own enum and range. */
export const CapabilityDeclaration = z.union([
  CapabilityName,
  z.strictObject({
    name: CapabilityName,
    enum: z.array(EnumValue).min(1).max(64).optional(),
    min: z.number().finite().optional(),
    max: z.number().finite().optional(),
  }),
])
export type CapabilityDeclaration = z.infer<typeof CapabilityDeclaration>

/** A capability as one model has it: the catalogue entry narrowed by the model. */
export interface ModelCapability extends Omit<CapabilitySpec, 'description'> {
  readonly name: CapabilityName
}

export class CapabilityDeclarationError extends Error {}

/**
 * Resolves a model's declarations against the catalogue. Throws a
 * CapabilityDeclarationError that names the capability and what is wrong.
 */
export function resolveCapabilities (declarations: readonly CapabilityDeclaration[]): ModelCapability[] {
  const seen = new Set<string>()
  return declarations.map((declaration) => {
    const d = typeof declaration === 'string' ? { name: declaration } : declaration
    const spec: CapabilitySpec = catalogue[d.name]
    if (seen.has(d.name)) throw new CapabilityDeclarationError(`capability ${d.name} is declared twice`)
    seen.add(d.name)
    const own = d as { enum?: string[], min?: number, max?: number }
    if (own.enum && spec.kind !== 'enum') {
      throw new CapabilityDeclarationError(`capability ${d.name} is a ${spec.kind}, it takes no enum`)
    }
    if ((own.min !== undefined || own.max !== undefined) && spec.kind !== 'number') {
      throw new CapabilityDeclarationError(`capability ${d.name} is a ${spec.kind}, it takes no min or max`)
    }
    const values = own.enum ?? spec.enum
    if (spec.kind === 'enum' && !values) {
      throw new CapabilityDeclarationError(`capability ${d.name} needs the model's own "enum" values, e.g. {"name":"${d.name}","enum":["eco","boost"]}`)
    }
    if (own.enum && new Set(own.enum).size !== own.enum.length) {
      throw new CapabilityDeclarationError(`capability ${d.name} lists an enum value twice`)
    }
    const min = own.min ?? spec.min
    const max = own.max ?? spec.max
    if (spec.min !== undefined && min !== undefined && min < spec.min) {
      throw new CapabilityDeclarationError(`capability ${d.name} min ${min} is below the catalogue's ${spec.min}`)
    }
    if (spec.max !== undefined && max !== undefined && max > spec.max) {
      throw new CapabilityDeclarationError(`capability ${d.name} max ${max} is above the catalogue's ${spec.max}`)
    }
    if (min !== undefined && max !== undefined && min > max) {
      throw new CapabilityDeclarationError(`capability ${d.name} min ${min} is above its max ${max}`)
    }
    return {
      name: d.name,
      kind: spec.kind,
      ...(spec.unit !== undefined && { unit: spec.unit }),
      ...(min !== undefined && { min }),
      ...(max !== undefined && { max }),
      ...(values && { enum: values }),
      settable: spec.settable,
    }
  })
}

/**
 * Checks one value against a model's capability. Returns null when valid, or
 * a message that says what was wrong, naming the model:
 * `temperature 412 is out of range -50..150 for model frostline-f2`
 * (`… for this device` when the model is not known, as on a device that was not told it).
 */
export function checkValue (cap: ModelCapability, value: unknown, modelName?: string): string | null {
  // Runs once per reading: nothing is built unless the value is refused.
  switch (cap.kind) {
    case 'boolean':
      return typeof value === 'boolean' ? null : `${cap.name} must be true or false, got ${describe(value)}`
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${cap.name} must be a finite number, got ${describe(value)}`
      if ((cap.min !== undefined && value < cap.min) || (cap.max !== undefined && value > cap.max)) {
        return `${cap.name} ${value} is out of range ${cap.min ?? '-∞'}..${cap.max ?? '∞'} ${forModel(modelName)}`
      }
      return null
    case 'enum':
      if (typeof value !== 'string') return `${cap.name} must be one of ${cap.enum!.join(', ')}, got ${describe(value)}`
      return cap.enum!.includes(value) ? null : `${cap.name} "${truncate(value)}" is not one of ${cap.enum!.join(', ')} ${forModel(modelName)}`
    case 'string':
      if (typeof value !== 'string') return `${cap.name} must be a string, got ${describe(value)}`
      if (value.length > maxStringLength) return `${cap.name} is longer than ${maxStringLength} characters`
      return stringProblem(cap.name, value)
  }
}

function forModel (modelName: string | undefined): string {
  return modelName === undefined ? 'for this device' : `for model ${modelName}`
}

/** Longest string reading, in UTF-16 code units. */
export const maxStringLength = 256

// C0 controls, DEL and C1 controls: a newline, NUL or terminal escape has no place in a reading,
// and would reach line protocol, logs and terminals that cannot hold it safely.
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/
// A lone surrogate cannot be stored as UTF-8; it would come back as U+FFFD.
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Why a string value cannot be a reading, or null when it can: every string
 * accepted here is stored and served back unchanged.
 */
export function stringProblem (name: string, value: string): string | null {
  if (plainText(value)) return null
  const control = controlCharacter.exec(value)
  if (control) {
    return `${name} contains a control character (${codePoint(control[0])}) at index ${control.index}: ${describe(value)}; strings may not hold C0/C1 control characters or DEL`
  }
  const surrogate = loneSurrogate.exec(value)
  if (surrogate) return `${name} contains a lone surrogate (${codePoint(surrogate[0])}) at index ${surrogate.index}; strings must be well-formed Unicode`
  return null
}

/**
 * True when no code unit of `value` is a control character or a surrogate:
 * nearly every reading, checked without a regex (this runs once per string
 * reading). Anything else, a well-formed emoji included, takes the regexes.
 */
function plainText (value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)) return false
  }
  return true
}

function codePoint (c: string): string {
  return `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return `"${truncate(value)}"`
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return `${typeof value} ${String(value)}`
}

/** At most 40 characters of a value for a message, with control characters and lone surrogates shown as \\uXXXX. */
function truncate (s: string): string {
  const shown = s.length > 40 ? `${s.slice(0, 40)}…` : s
  return shown.replace(/[\u0000-\u001f\u007f-\u009f\\]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (c) => c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
