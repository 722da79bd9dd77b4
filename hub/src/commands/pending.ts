import type { ReadingValue } from '@trellis/device-sdk'
import type { DeviceContext } from '../registry/directory.js'
import type { CommandRecord } from './command-log.js'

/** A pending desired value: what a command asked for and the device has not confirmed yet. */
export interface DesiredValue { value: ReadingValue, command: string, since: number }

/**
 * Whether the owner who issued a command still owns the device, with no
 * release since: a command goes out, counts as desired and is shown only
 * while this holds.
 */
export function issuerOwns (record: Pick<CommandRecord, 'ownerId' | 'createdAt'>, ctx: Pick<DeviceContext, 'ownerId' | 'releasedAt'>): boolean {
  return ctx.ownerId === record.ownerId && (ctx.releasedAt === null || record.createdAt > ctx.releasedAt)
}

/** Pending commands per device, queued or in flight: what counts against a device's limit, and the source of desired values. */
export class PendingCommands {
  private readonly byDevice = new Map<string, Map<string, CommandRecord>>()

  track (record: CommandRecord): void {
    let pending = this.byDevice.get(record.deviceId)
    if (!pending) this.byDevice.set(record.deviceId, pending = new Map())
    pending.set(record.id, record)
  }

  untrack (record: CommandRecord): void {
    const pending = this.byDevice.get(record.deviceId)
    if (!pending) return
    pending.delete(record.id)
    if (pending.size === 0) this.byDevice.delete(record.deviceId)
  }

  count (deviceId: string): number {
    return this.byDevice.get(deviceId)?.size ?? 0
  }

  find (deviceId: string, id: string): CommandRecord | undefined {
    return this.byDevice.get(deviceId)?.get(id)
  }

  /** The device's pending commands, as a copy (safe to untrack while iterating). */
  of (deviceId: string): CommandRecord[] {
    return [...this.byDevice.get(deviceId)?.values() ?? []]
  }

  /** The desired values of the device's pending commands whose issuer still owns it, per capability (the newest command wins). */
  desired (ctx: DeviceContext | undefined, deviceId: string): Map<string, DesiredValue> {
    const out = new Map<string, DesiredValue>()
    if (!ctx) return out
    for (const record of this.byDevice.get(deviceId)?.values() ?? []) {
      if (!issuerOwns(record, ctx)) continue
      for (const [cap, value] of Object.entries(record.request.set ?? {})) {
        const seen = out.get(cap)
        if (!seen || seen.since <= record.createdAt) out.set(cap, { value, command: record.id, since: record.createdAt })
      }
    }
    return out
  }
}
