import { z } from 'zod'
import { ReadingValue } from './capabilities.js'

/** Earliest timestamp accepted: a clock that says 1970 is a clock that was not set. */
export const EARLIEST_TS = Date.UTC(2000, 0, 1)
/** How far into the future a device clock may run before its readings are refused. */
export const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000

/** epoch milliseconds, or an ISO-8601 string with a zone. */
export const Timestamp = z.union([
  z.number().int().nonnegative(),
  z.iso.datetime({ offset: true }),
])
export type Timestamp = z.infer<typeof Timestamp>

/** Converts a wire timestamp to epoch ms; throws a RangeError with the reason when implausible. */
export function toEpochMs (ts: Timestamp, now = Date.now()): number {
  const ms = typeof ts === 'number' ? ts : Date.parse(ts)
  if (!Number.isFinite(ms)) throw new RangeError(`timestamp ${String(ts)} is not a date`)
  if (ms < EARLIEST_TS) throw new RangeError(`timestamp ${new Date(ms).toISOString()} is before 2000; send epoch milliseconds or ISO-8601`)
  if (ms > now + MAX_CLOCK_SKEW_MS) throw new RangeError(`timestamp ${new Date(ms).toISOString()} is more than a day in the future`)
  return ms
}


/** `devices/{id}/telemetry`, canonical form. */
export const Telemetry = z.object({
  ts: Timestamp.optional(),
  readings: z.record(z.string(), z.unknown()),
})
export type Telemetry = z.infer<typeof Telemetry>

/** `devices/{id}/events`: alarms and notable moments. */
export const DeviceEvent = z.object({
  ts: Timestamp.optional(),
  type: z.string().min(1).max(64),
  data: z.record(z.string(), z.unknown()).optional(),
})
export type DeviceEvent = z.infer<typeof DeviceEvent>

/** `devices/{id}/presence`: retained; `offline` is the device's last will. */
export const Presence = z.enum(['online', 'offline'])
export type Presence = z.infer<typeof Presence>

export const CommandId = z.string().min(1).max(64)

/** `devices/{id}/commands`, canonical form. */
export const Command = z.object({
  id: CommandId,
  set: z.record(z.string(), ReadingValue).optional(),
  action: z.string().min(1).max(64).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
})
export type Command = z.infer<typeof Command>

/** `devices/{id}/acks`: the device's answer to a command. */
export const Ack = z.object({
  id: CommandId,
  status: z.enum(['ok', 'error']),
  error: z.string().max(512).optional(),
  state: z.record(z.string(), ReadingValue).optional(),
})
export type Ack = z.infer<typeof Ack>
