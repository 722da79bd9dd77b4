import type { Logger } from 'pino'
import type { DeviceContext } from '../registry/directory.js'
import type { CommandLog, CommandRecord } from './command-log.js'
import { issuerOwns } from './pending.js'

/** Why a queued command ended unsent, for its record. */
export type UnsentReason = (record: CommandRecord) => string

export const expired: UnsentReason = (r) => `device ${r.deviceId} did not come back before ${new Date(r.queuedUntil!).toISOString()}, when the queued command expired`
export const cancelled: UnsentReason = (r) => `cancelled: device ${r.deviceId} changed owner before the command was delivered`

export interface OfflineQueueOptions {
  commandLog: CommandLog
  /** How often expired commands are dropped. Default 1000 ms. */
  sweepMs?: number
  log: Logger
  /** Told of commands that end unsent: expired (`timeout`), or cancelled by a change of owner (`error`). */
  onEnded: (records: CommandRecord[], status: 'timeout' | 'error', reason: UnsentReason) => void
}

/**
 * Commands waiting for their offline device, per device, oldest first. The
 * records are written to the command log before they are queued (see
 * `CommandLog.insert`), so the queue is rebuilt from it after a restart. This
 * class holds them and drops the expired ones; the command service decides
 * when they go out and what becomes of them.
 */
export class OfflineQueue {
  private readonly queues = new Map<string, CommandRecord[]>()
  private readonly sweep: NodeJS.Timeout

  constructor (private readonly opts: OfflineQueueOptions) {
    this.sweep = setInterval(() => this.expire(Date.now()), opts.sweepMs ?? 1_000)
    this.sweep.unref()
  }

  /** Rebuilds the queue from the log; returns the records restored, for the service's bookkeeping. */
  async restore (): Promise<CommandRecord[]> {
    const records = await this.opts.commandLog.queued()
    for (const record of records) this.add(record)
    return records
  }

  add (record: CommandRecord): void {
    const queue = this.queues.get(record.deviceId)
    if (queue) queue.push(record)
    else this.queues.set(record.deviceId, [record])
  }

  has (deviceId: string): boolean {
    return this.queues.has(deviceId)
  }

  /** Takes the device's whole queue out, to be delivered. */
  take (deviceId: string): CommandRecord[] {
    const queue = this.queues.get(deviceId) ?? []
    this.queues.delete(deviceId)
    return queue
  }

  /**
   * Takes the device's queue out and, once `device` resolves, sends the
   * commands whose issuer still owns the device and that have not expired,
   * oldest first, in one call; the others end unsent. A failed lookup puts the queue back.
   */
  release (deviceId: string, device: Promise<DeviceContext | null>, send: (records: CommandRecord[], ctx: DeviceContext) => void): void {
    const queue = this.take(deviceId)
    device.then((ctx) => {
      const now = Date.now()
      const stale: CommandRecord[] = []
      const late: CommandRecord[] = []
      const due: CommandRecord[] = []
      for (const record of queue) {
        if (!ctx || !issuerOwns(record, ctx)) stale.push(record)
        else if (record.queuedUntil !== null && record.queuedUntil < now) late.push(record)
        else due.push(record)
      }
      if (ctx && due.length > 0) send(due, ctx)
      if (stale.length > 0) this.opts.onEnded(stale, 'error', cancelled)
      if (late.length > 0) this.opts.onEnded(late, 'timeout', expired)
    }, (err: Error) => {
      for (const record of queue) this.add(record)
      this.opts.log.error({ err, deviceId }, 'queued commands could not be delivered')
    })
  }

  /** Takes out the device's queued commands that `drop` picks; returns them. */
  remove (deviceId: string, drop: (record: CommandRecord) => boolean): CommandRecord[] {
    const queue = this.queues.get(deviceId)
    if (!queue) return []
    const dropped = queue.filter(drop)
    if (dropped.length === 0) return dropped
    const kept = queue.filter((r) => !dropped.includes(r))
    if (kept.length > 0) this.queues.set(deviceId, kept)
    else this.queues.delete(deviceId)
    return dropped
  }

  close (): void {
    clearInterval(this.sweep)
  }

  private expire (now: number): void {
    for (const deviceId of [...this.queues.keys()]) {
      const late = this.remove(deviceId, (r) => r.queuedUntil !== null && r.queuedUntil < now)
      if (late.length > 0) this.opts.onEnded(late, 'timeout', expired)
    }
  }
}
