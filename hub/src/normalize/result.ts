import type { CapabilityName, ReadingValue } from '@trellis/device-sdk'

/** What every dialect produces; apart from the compiled model so that dialects and model import it without a cycle. */
export interface Reading { capability: CapabilityName, value: ReadingValue }

export interface NormalizedTelemetry {
  /** epoch ms: the device's timestamp, or arrival time. */
  ts: number
  readings: Reading[]
  problems: string[]
}

export type NormalizeResult = { ok: true, value: NormalizedTelemetry } | { ok: false, reason: string }
