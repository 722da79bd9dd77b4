import type { ReadingValue } from '@trellis/device-sdk'

/**
 * What one kind of simulated device sends. A profile carries the model it is
 * declared with (`POST /v1/models` body), so a dialect profile is a profile
 * whose model has a `mapping` and whose `encode` writes the dialect: add it to
 * `profiles` and pass its name to `--profiles`; nothing else changes.
 */
export interface PayloadProfile {
  readonly name: string
  /** The model declaration, as posted to `/v1/models`; a dialect adds its `mapping` here. */
  readonly model: { name: string, capabilities: unknown[], mapping?: unknown }
  /** Readings one message yields once normalized. */
  readonly readingsPerMessage: number
  /** The payload of this device's `seq`-th message, taken at `ts` (epoch ms). */
  encode (seq: number, ts: number): string
  /**
   * The baseline's hand-written parse of the same payload into readings: what
   * a naive subscriber would do for this brand.
   */
  naiveReadings (payload: unknown): { ts: number, readings: Record<string, ReadingValue> }
}

const canonicalNaive = (payload: unknown) => {
  const p = payload as { ts: number, readings: Record<string, ReadingValue> }
  return { ts: p.ts, readings: p.readings }
}

// Values move with seq so that consecutive messages differ, as real ones do.
export const profiles: Record<string, PayloadProfile> = {
  thermostat: {
    name: 'thermostat',
    model: { name: 'bench-thermostat', capabilities: ['temperature', 'humidity', 'power'] },
    readingsPerMessage: 3,
    encode: (seq, ts) => `{"ts":${ts},"readings":{"temperature":${(18 + (seq % 70) / 10).toFixed(1)},"humidity":${40 + (seq % 20)},"power":${seq % 7 !== 0}}}`,
    naiveReadings: canonicalNaive,
  },
  plug: {
    name: 'plug',
    model: { name: 'bench-plug', capabilities: ['powerDraw', 'energy', 'voltage', 'current'] },
    readingsPerMessage: 4,
    encode: (seq, ts) => `{"ts":${ts},"readings":{"powerDraw":${(seq % 2000) + 0.5},"energy":${(1000 + seq / 1000).toFixed(3)},"voltage":${(229 + (seq % 30) / 10).toFixed(1)},"current":${((seq % 900) / 100).toFixed(2)}}}`,
    naiveReadings: canonicalNaive,
  },
  'air-sensor': {
    name: 'air-sensor',
    model: { name: 'bench-air-sensor', capabilities: ['co2', 'pm25', 'battery'] },
    readingsPerMessage: 3,
    encode: (seq, ts) => `{"ts":${ts},"readings":{"co2":${400 + (seq % 1600)},"pm25":${(seq % 300) / 10},"battery":${100 - (seq % 100)}}}`,
    naiveReadings: canonicalNaive,
  },
}

/** Canonical only until the dialect mappings land (issue 7); then add dialect profiles here. */
export const defaultProfiles = ['thermostat', 'plug', 'air-sensor']

export function profileByName (name: string): PayloadProfile {
  const profile = profiles[name]
  if (!profile) throw new Error(`unknown payload profile ${name}; known: ${Object.keys(profiles).join(', ')}`)
  return profile
}

/** Every measurement (capability) a set of profiles writes, for counting in InfluxDB. */
export function measurementsOf (names: readonly string[]): string[] {
  const all = new Set<string>()
  for (const name of names) {
    for (const c of profileByName(name).model.capabilities) all.add(typeof c === 'string' ? c : (c as { name: string }).name)
  }
  return [...all]
}
