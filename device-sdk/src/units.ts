/**
 * The one table of unit conversions a mapping may declare. Each entry turns a
 * value in a device's unit into the canonical unit of a capability, and back
 * (for commands). A unit is only accepted for capabilities whose canonical
 * unit it converts to, so `°F` can feed `temperature` but never `powerDraw`.
 */
export interface UnitConversion {
  /** The device's unit, as a mapping spells it in `"unit"`. */
  readonly unit: string
  /** The canonical unit it converts to (a capability's `unit` in the catalogue). */
  readonly canonical: string
  readonly description: string
  /** Device value → canonical value. Throws a RangeError when the value cannot be read. */
  readonly toCanonical: (value: number | string) => number
  /** Canonical value → device value. */
  readonly fromCanonical: (value: number) => number | string
}

/** Exact powers of ten, 10^0 to 10^22 (each a double without rounding). */
const pow10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`))

/**
 * Float noise such as 21.600000000000001 is cut so stored values read as the
 * device meant them: the value rounded to 12 significant digits, exactly
 * `Number(value.toPrecision(12))`. That text round trip was a third of a
 * converted dialect's normalizing time, so the usual case is done in
 * arithmetic: scaled by an exact power of ten to a 12-digit integer,
 * rounded, and divided back (one correctly rounded division gives the double
 * nearest to that decimal, as parsing its text does). A scaled value too
 * near a half, where the multiplication's own rounding could pick the other
 * integer, and magnitudes outside 1e-11..1e12 take the text route.
 */
export function tidy (value: number): number {
  const a = Math.abs(value)
  if (a < 1e12 && a >= 1e-11) {
    if (Number.isInteger(value)) return value
    let e = Math.floor(Math.log10(a))
    // log10 may be a hair off at powers of ten: settle the exponent on exact powers.
    if (e >= 0 ? a < pow10[e] : a * pow10[-e] < 1) e--
    else if (e + 1 >= 0 ? a >= pow10[e + 1] : a * pow10[-(e + 1)] >= 1) e++
    const k = 11 - e
    if (k >= 0 && k <= 22) {
      const scaled = value * pow10[k]
      const fraction = scaled - Math.floor(scaled)
      if (Math.abs(fraction - 0.5) > 1e-3) return Math.round(scaled) / pow10[k]
    }
  }
  return value === 0 ? 0 : Number(value.toPrecision(12))
}

function numeric (value: number | string): number {
  const n = typeof value === 'number' ? value : Number(value.trim())
  if (typeof value === 'string' && value.trim() === '') throw new RangeError('empty text is not a number')
  if (!Number.isFinite(n)) throw new RangeError(`${typeof value === 'string' ? `"${value.slice(0, 40)}"` : String(value)} is not a number`)
  return n
}

function linear (unit: string, canonical: string, factor: number, description: string, offset = 0): UnitConversion {
  return {
    unit,
    canonical,
    description,
    toCanonical: (v) => tidy(numeric(v) * factor + offset),
    fromCanonical: (v) => tidy((v - offset) / factor),
  }
}

/** `hh:mm:ss` (or `mm:ss`, or a plain number of seconds) to seconds. */
export function parseClockDuration (value: number | string): number {
  if (typeof value === 'number') return numeric(value)
  const m = /^\s*(?:(\d+):)?([0-5]?\d):([0-5]\d)\s*$/.exec(value)
  if (!m) throw new RangeError(`"${value.slice(0, 40)}" is not a duration hh:mm:ss`)
  return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3])
}

/** Seconds as `hh:mm:ss`, hours unbounded: 4530 → `01:15:30`. */
export function formatClockDuration (seconds: number): string {
  const total = Math.max(0, Math.round(seconds))
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${pad(Math.floor(total / 3600))}:${pad(Math.floor(total / 60) % 60)}:${pad(total % 60)}`
}

const table: UnitConversion[] = [
  linear('°F', '°C', 5 / 9, 'degrees Fahrenheit', -32 * 5 / 9),
  linear('K', '°C', 1, 'kelvin (as a temperature)', -273.15),
  linear('d°C', '°C', 0.1, 'deci-degrees Celsius: tenths of a degree, 215 = 21.5 °C'),
  linear('d°F', '°C', 0.5 / 9, 'deci-degrees Fahrenheit: tenths of a degree, 705 = 70.5 °F', -32 * 5 / 9),
  linear('mW', 'W', 0.001, 'milliwatts'),
  linear('kW', 'W', 1000, 'kilowatts'),
  linear('Wh', 'kWh', 0.001, 'watt-hours'),
  linear('MWh', 'kWh', 1000, 'megawatt-hours'),
  linear('J', 'kWh', 1 / 3_600_000, 'joules (watt-seconds)'),
  linear('mV', 'V', 0.001, 'millivolts'),
  linear('dV', 'V', 0.1, 'decivolts: tenths of a volt, 2301 = 230.1 V'),
  linear('mA', 'A', 0.001, 'milliamperes'),
  linear('ms', 's', 0.001, 'milliseconds'),
  linear('min', 's', 60, 'minutes'),
  linear('h', 's', 3600, 'hours'),
  {
    unit: 'hh:mm:ss',
    canonical: 's',
    description: 'a clock-style duration text, "01:15:30" (or "15:30" as mm:ss)',
    toCanonical: parseClockDuration,
    fromCanonical: formatClockDuration,
  },
  linear('ratio', '%', 100, 'a share from 0 to 1: 0.42 = 42 %'),
  linear('‰', '%', 0.1, 'per mille: 425 = 42.5 %'),
  linear('ppb', 'ppm', 0.001, 'parts per billion'),
  linear('mg/m³', 'µg/m³', 1000, 'milligrams per cubic metre'),
  linear('klx', 'lx', 1000, 'kilolux'),
  {
    unit: 'mired',
    canonical: 'K',
    description: 'micro reciprocal degrees, as Zigbee and Hue lamps report colour temperature: 250 mired = 4000 K',
    toCanonical: (v) => { const n = numeric(v); if (n <= 0) throw new RangeError(`${n} mired is not a colour temperature`); return tidy(1_000_000 / n) },
    fromCanonical: (v) => tidy(1_000_000 / v),
  },
]

/** Every canonical unit of the catalogue converts to itself. */
const canonicalUnits = ['°C', '%', 'W', 'kWh', 'V', 'A', 'ppm', 'µg/m³', 'lx', 'K', 's', 'dBm']
for (const u of canonicalUnits) table.push(linear(u, u, 1, `the canonical unit ${u}`))

/** All conversions, by device unit and then canonical unit. */
export const unitConversions: readonly UnitConversion[] = table

const byUnit = new Map<string, UnitConversion[]>()
for (const c of table) byUnit.set(c.unit, [...(byUnit.get(c.unit) ?? []), c])

/** The conversion from `unit` to `canonical`, or undefined when there is none. */
export function findConversion (unit: string, canonical: string): UnitConversion | undefined {
  return byUnit.get(unit)?.find((c) => c.canonical === canonical)
}

/** The device units that convert to `canonical`: what to suggest when a mapping picks a wrong one. */
export function unitsFor (canonical: string): string[] {
  return table.filter((c) => c.canonical === canonical).map((c) => c.unit)
}

export function isUnitName (unit: string): boolean {
  return byUnit.has(unit)
}
