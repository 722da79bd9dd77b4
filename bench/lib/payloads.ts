import type { ReadingValue } from '@trellis/device-sdk'
import { voltwiseP1 } from '@trellis/hub/adapters'

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
   * a naive subscriber would do for this brand. It gets the payload JSON-parsed
   * when it is JSON, else as text.
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
  // A built-in dialect: key=value text, energy in Wh, relay as ON/OFF, through its mapping.
  'voltwise-p1': {
    name: 'voltwise-p1',
    model: voltwiseP1.model as PayloadProfile['model'],
    readingsPerMessage: 6,
    encode: (seq, ts) => `TS=${ts};V=${(229 + (seq % 30) / 10).toFixed(1)};A=${((seq % 900) / 100).toFixed(3)};W=${(seq % 2000) + 0.5};Wh=${(15000 + seq / 10).toFixed(1)};RELAY=${seq % 5 === 0 ? 'OFF' : 'ON'};RSSI=${-40 - (seq % 50)}`,
    naiveReadings: (payload) => {
      const fields = Object.fromEntries(String(payload).split(';').map((pair) => pair.split('=') as [string, string]))
      return {
        ts: Number(fields.TS),
        readings: { power: fields.RELAY === 'ON', voltage: Number(fields.V), current: Number(fields.A), powerDraw: Number(fields.W), energy: Number(fields.Wh) / 1000, rssi: Number(fields.RSSI) },
      }
    },
  },
}

/** Canonical SDK devices and one built-in dialect (a quarter of the fleet), 3.75 readings a message. */
export const defaultProfiles = ['thermostat', 'plug', 'air-sensor', 'voltwise-p1']

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
