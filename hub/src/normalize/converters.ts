import { tidy, type DeviceScalar, type ReadingValue, type UnitConversion, type ValueMap } from '@trellis/device-sdk'

/**
 * The shared converters every mapping is built from. A rule compiles to a
 * short chain of these, once per model; a new brand adds data, not code.
 * A converter throws a ConversionError saying what was wrong with the value.
 */
export type Converter = (value: unknown) => unknown

export class ConversionError extends Error {}

/** How a device value reads in a message: `"OPEN"`, `42`, `an object`. */
export function describeValue (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  if (value !== null && typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

/** Device value → canonical value by a table: `{"OPEN": false, "CLOSED": true}`. */
export function valueMap (map: ValueMap): Converter {
  // Sorted: the registry's jsonb does not keep the order a maker wrote the keys in.
  const expected = Object.keys(map).sort().join(', ')
  return (value) => {
    const key = value !== null && typeof value === 'object' ? null : String(value)
    if (key === null || !Object.hasOwn(map, key)) throw new ConversionError(`${describeValue(value)} is not in the map; expected one of ${expected}`)
    return map[key]
  }
}

/** A number, or text that reads as one (key=value payloads carry numbers as text). */
export const toNumber: Converter = (value) => {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
  if (!Number.isFinite(n)) throw new ConversionError(`expected a number, got ${describeValue(value)}`)
  return n
}

/** value × scale + offset. */
export function scaleOffset (scale: number, offset: number): Converter {
  return (value) => tidy((value as number) * scale + offset)
}

/** From the device's unit to the canonical one, by the contract's unit table. */
export function unitToCanonical (conversion: UnitConversion): Converter {
  return (value) => {
    if (typeof value !== 'number' && typeof value !== 'string') throw new ConversionError(`expected a number, got ${describeValue(value)}`)
    try {
      return conversion.toCanonical(value)
    } catch (err) {
      throw new ConversionError((err as Error).message)
    }
  }
}

/** JSON true/false as they are; anything else needs a map. */
export const toBoolean: Converter = (value) => {
  if (typeof value === 'boolean') return value
  throw new ConversionError(`expected true or false, got ${describeValue(value)}; map it, e.g. "map": {"ON": true, "OFF": false}`)
}

/** Text (enum values, firmware versions); a number is taken as its text. */
export const toText: Converter = (value) => {
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  throw new ConversionError(`expected text, got ${describeValue(value)}`)
}

/** Runs converters in order. */
export function chain (converters: readonly Converter[]): Converter {
  if (converters.length === 1) return converters[0]
  return (value) => {
    let v = value
    for (const convert of converters) v = convert(v)
    return v
  }
}

// --- the way back -----------------------------------------------------------

/** A map key as the device sends it: `"1"` → 1, `"true"` → true, anything else stays text. */
export function deviceValueOfKey (key: string): DeviceScalar {
  if (key === 'true') return true
  if (key === 'false') return false
  if (key.trim() !== '' && Number.isFinite(Number(key))) return Number(key)
  return key
}

/** Canonical value → the device value the map gives it (one-to-one, as parseMapping ensures for commands). */
export function inverseValueMap (map: ValueMap): Converter {
  const inverse = new Map<ReadingValue, DeviceScalar>(Object.entries(map).map(([key, value]) => [value, deviceValueOfKey(key)]))
  return (value) => {
    if (!inverse.has(value as ReadingValue)) throw new ConversionError(`${describeValue(value)} has no device value in the map`)
    return inverse.get(value as ReadingValue)
  }
}

/** (value − offset) ÷ scale. */
export function inverseScaleOffset (scale: number, offset: number): Converter {
  return (value) => tidy(((value as number) - offset) / scale)
}

/** From the canonical unit back to the device's. */
export function unitFromCanonical (conversion: UnitConversion): Converter {
  return (value) => conversion.fromCanonical(value as number)
}
