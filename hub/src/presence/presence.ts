import cron, { type ScheduledTask } from 'node-cron'
import { escape } from 'influx'
import type { Logger } from 'pino'
import type { CompiledModel, DeviceDirectory } from '../registry/directory.js'
import type { StateChange, StateStore } from '../state/state.js'
import type { PointWriter } from '../store/writer.js'
import { checkWindow, type TelemetryStore } from '../store/telemetry.js'

/** InfluxDB measurement of presence changes: field `value` true (online) or false. */
export const PRESENCE_MEASUREMENT = 'presence'

export interface PresenceMonitorOptions {
  state: StateStore
  directory: DeviceDirectory
  writer: PointWriter
  store: TelemetryStore
  log: Logger
  /**
   * Whether this node judges the device's silence. In a cluster only the node
   * holding a device's connection hears its heartbeats (other nodes learn only
   * of readings and presence), so only it sweeps the device. Default: every device.
   */
  judges?: (deviceId: string) => boolean
  /** node-cron expression (seconds first) of the staleness sweep. Default every 10 s: `*\/10 * * * * *`. */
  sweepCron?: string
  /** How long a device may stay silent before it counts as offline, unless its model says. Default 600000 ms (10 min). */
  defaultAllowanceMs?: number
  /** A model's own heartbeat allowance in ms; undefined falls back to `defaultAllowanceMs`. Default: none. */
  allowanceFor?: (model: CompiledModel) => number | undefined
}

export interface PresenceChange { ts: string, online: boolean }

export interface PresenceHistory {
  /** Whether the device was online at `from` (from the last change before it). */
  onlineAtStart: boolean
  changes: PresenceChange[]
}

/**
 * Keeps presence honest and remembered: stores every online/offline change in
 * InfluxDB, and sweeps (node-cron) for devices that went silent longer than
 * their model's heartbeat allowance without a will, marking them offline.
 */
export class PresenceMonitor {
  /** Devices currently online, from the state store's presence changes. */
  private readonly online = new Set<string>()
  private readonly task: ScheduledTask
  private readonly defaultAllowanceMs: number

  constructor (private readonly opts: PresenceMonitorOptions) {
    this.defaultAllowanceMs = opts.defaultAllowanceMs ?? 600_000
    opts.state.on('presence', this.onChange)
    this.task = cron.schedule(opts.sweepCron ?? '*/10 * * * * *', () => this.sweep(), { name: 'presence-sweep', noOverlap: true })
    // The sweep alone must not keep a process alive that has nothing else to do.
    this.task.unref()
  }

  /** Marks offline every online device silent longer than its allowance. Returns their ids. */
  sweep (now = Date.now()): string[] {
    const stale: string[] = []
    for (const deviceId of this.online) {
      if (this.opts.judges && !this.opts.judges(deviceId)) continue
      const ctx = this.opts.directory.peek(deviceId)
      const lastSeen = this.opts.state.get(deviceId)?.lastSeen ?? null
      const allowance = (ctx && (this.opts.allowanceFor?.(ctx.model) ?? ctx.model.heartbeatMs)) ?? this.defaultAllowanceMs
      if (lastSeen === null || now - lastSeen > allowance) stale.push(deviceId)
    }
    for (const deviceId of stale) {
      this.opts.log.info({ deviceId }, 'device silent longer than its heartbeat allowance; marked offline')
      this.opts.state.setPresence(deviceId, false, now)
    }
    return stale
  }

  /** The device's presence changes between `from` and `to`, from InfluxDB. */
  async history (deviceId: string, from: Date, to: Date, limit = 10_000): Promise<PresenceHistory> {
    checkWindow(from, to)
    const influx = this.opts.store
    const device = escape.stringLit(deviceId)
    const before = await influx.query<{ value: boolean }>(
      `SELECT last("value") AS "value" FROM ${PRESENCE_MEASUREMENT} WHERE "device" = ${device} AND time < ${from.getTime()}ms`)
    const rows = await influx.query<{ time: Date, value: boolean }>(
      `SELECT "value" FROM ${PRESENCE_MEASUREMENT} WHERE "device" = ${device} AND time >= ${from.getTime()}ms AND time <= ${to.getTime()}ms ORDER BY time ASC LIMIT ${limit}`)
    return { onlineAtStart: before[0]?.value === true, changes: rows.map((r) => ({ ts: r.time.toISOString(), online: r.value })) }
  }

  close (): void {
    this.opts.state.off('presence', this.onChange)
    void this.task.destroy()
  }

  private readonly onChange = (change: StateChange) => {
    if (change.kind !== 'presence') return
    if (change.online) this.online.add(change.deviceId)
    else this.online.delete(change.deviceId)
    const { directory, writer, log } = this.opts
    const write = (ctx: { id: string, makerId: string, model: { id: string } } | null) => {
      if (!ctx) return
      writer.write([{ measurement: PRESENCE_MEASUREMENT, device: ctx.id, model: ctx.model.id, maker: ctx.makerId, value: change.online, ts: Date.parse(change.at) }], (err) => {
        if (err) log.error({ err: err.message, deviceId: ctx.id }, 'presence change could not be stored')
      })
    }
    const cached = directory.peek(change.deviceId)
    if (cached) write(cached)
    else directory.get(change.deviceId).then(write, (err: Error) => log.error({ err, deviceId: change.deviceId }, 'device lookup failed'))
  }
}

/**
 * Share of [from, to] a device was online, given whether it was online at
 * `from` and its changes in order. Repeated states count once.
 */
export function uptime (onlineAtStart: boolean, changes: readonly PresenceChange[], from: number, to: number): { onlineMs: number, ratio: number } {
  const span = Math.max(0, to - from)
  let online = onlineAtStart
  let since = from
  let onlineMs = 0
  for (const change of changes) {
    const at = Math.min(to, Math.max(from, Date.parse(change.ts)))
    if (online) onlineMs += at - since
    online = change.online
    since = at
  }
  if (online) onlineMs += to - since
  return { onlineMs, ratio: span === 0 ? 0 : onlineMs / span }
}
