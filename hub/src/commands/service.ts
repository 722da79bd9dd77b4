import { EventEmitter } from 'node:events'
import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import { Counter } from 'prom-client'
import { checkValue, isCapabilityName, topics, type Command, type ReadingValue } from '@trellis/device-sdk'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import type { StateStore } from '../state/state.js'
import type { PointWriter } from '../store/writer.js'
import type { DeadLetters } from '../ingest/dead-letters.js'
import type { HubMetrics } from '../metrics.js'
import type { Reading } from '../normalize/index.js'
import { decodeAck, encodeCommand } from '../normalize/commands.js'
import { CommandEncodeError } from '../normalize/mapping.js'
import { newId } from '../registry/secrets.js'
import type { CommandLog, CommandOrigin, CommandRecord } from './command-log.js'
import { commandProblem, type CommandRequest } from './validate.js'

export interface CommandServiceOptions {
  aedes: Aedes
  directory: DeviceDirectory
  state: StateStore
  writer: PointWriter
  deadLetters: DeadLetters
  metrics: HubMetrics
  commandLog: CommandLog
  log: Logger
  /** How long a command waits for its ack when the caller does not say. Default 5000 ms. */
  defaultWaitMs?: number
  /** How long an ack that comes after its command timed out still counts, and a duplicate ack is recognised. Default 60000 ms. */
  lateAckWindowMs?: number
  /** How long a queued command waits for its offline device when the caller does not say. Default 3600000 ms (1 h). */
  defaultQueueTtlMs?: number
  /** Commands pending per device at most, queued or awaiting their ack. Default 100. */
  maxPendingPerDevice?: number
  /** How often expired queued commands are dropped. Default 1000 ms. */
  queueSweepMs?: number
  /** Settled commands are kept in the registry this long. Default 2592000000 ms (30 days). */
  retentionMs?: number
}

export interface SendOptions {
  /** How long to wait for the ack, in ms; 0 returns at once with `pending`. Default: the service's `defaultWaitMs`. */
  waitMs?: number
  /** Queue the command when the device is offline instead of refusing it. Default false. */
  queue?: boolean
  /** How long a queued command waits for its device, in ms. Default: the service's `defaultQueueTtlMs`. */
  queueTtlMs?: number
  /** Default `api`. */
  origin?: CommandOrigin
}

export type CommandRefusal = 'invalid' | 'offline' | 'busy'

/** A command the hub will not send, with a message that says why. */
export class CommandRefused extends Error {
  constructor (readonly reason: CommandRefusal, message: string) { super(message) }
}

/** A pending desired value: what a command asked for and the device has not confirmed yet. */
export interface DesiredValue { value: ReadingValue, command: string, since: number }

interface InFlight {
  record: CommandRecord
  ctx: DeviceContext
  waiters: Array<() => void>
  deadline: NodeJS.Timeout
  /** Forgets the command once a late ack can no longer count. */
  forget?: NodeJS.Timeout
  /** Counted in `trellis_commands_total` already: a late ack after a timeout changes the record, not the count. */
  counted?: boolean
}

/**
 * Sends owners' commands to devices and follows each to its ack: validates
 * against the model, publishes in-process (QoS 1, in the model's dialect),
 * waits for the ack, queues for offline devices within a TTL, and keeps the
 * record in the registry. Emits `change` (CommandRecord) on every status change.
 */
export class CommandService extends EventEmitter {
  private readonly inFlight = new Map<string, InFlight>()
  /** Pending commands per device, queued or in flight: the source of desired values. */
  private readonly pendingByDevice = new Map<string, Map<string, CommandRecord>>()
  private readonly queues = new Map<string, CommandRecord[]>()
  private readonly defaultWaitMs: number
  private readonly lateAckWindowMs: number
  private readonly defaultQueueTtlMs: number
  private readonly maxPending: number
  private readonly sweep: NodeJS.Timeout
  private readonly pruning: NodeJS.Timeout
  private readonly counted: Counter<'status'>
  private readonly log: Logger
  private closed = false

  private constructor (private readonly opts: CommandServiceOptions) {
    super()
    this.defaultWaitMs = opts.defaultWaitMs ?? 5_000
    this.lateAckWindowMs = opts.lateAckWindowMs ?? 60_000
    this.defaultQueueTtlMs = opts.defaultQueueTtlMs ?? 3_600_000
    this.maxPending = opts.maxPendingPerDevice ?? 100
    this.log = opts.log
    this.counted = new Counter({ name: 'trellis_commands_total', help: 'Commands by final status (ok, error, timeout), each counted once: a late ack after a timeout does not count again.', labelNames: ['status'] as const, registers: [opts.metrics.registry] })
    this.sweep = setInterval(() => this.expireQueued(), opts.queueSweepMs ?? 1_000)
    this.sweep.unref()
    const retentionMs = opts.retentionMs ?? 30 * 86_400_000
    this.pruning = setInterval(() => {
      opts.commandLog.prune(Date.now() - retentionMs).then((n) => {
        if (n > 0) this.log.info({ pruned: n }, 'old commands pruned')
      }, (err: Error) => this.log.error({ err }, 'old commands could not be pruned'))
    }, Math.min(retentionMs, 3_600_000))
    this.pruning.unref()
    opts.state.on('presence', this.onStateChange)
    opts.aedes.on('clientReady', this.onClientReady)
    opts.aedes.on('subscribe', this.onSubscribe)
  }

  /** Opens the service and restores the offline queue from the registry. */
  static async start (opts: CommandServiceOptions): Promise<CommandService> {
    const service = new CommandService(opts)
    await service.restore()
    return service
  }

  /**
   * Validates and sends a command, or queues it for an offline device. Resolves
   * with the record once the ack came, the wait ran out (`timeout`), or at once
   * (`pending`) for `waitMs: 0` and for queued commands. Throws CommandRefused.
   */
  async send (ctx: DeviceContext, ownerId: string, request: CommandRequest, opts: SendOptions = {}): Promise<CommandRecord> {
    if (this.closed) throw new Error('the command service is closed')
    const problem = commandProblem(ctx.model, request)
    if (problem) throw new CommandRefused('invalid', problem)
    const id = newId('cmd')
    // A dialect's mapping may be unable to say what the catalogue allows: refuse before anything is recorded.
    const payload = this.encode(ctx, { id, ...request })
    const now = Date.now()
    const record: CommandRecord = {
      id,
      deviceId: ctx.id,
      ownerId,
      origin: opts.origin ?? 'api',
      request,
      status: 'pending',
      error: null,
      state: null,
      createdAt: now,
      sentAt: null,
      ackedAt: null,
      queuedUntil: null,
    }
    const online = this.opts.state.get(ctx.id)?.online === true
    if (!online && !opts.queue) throw new CommandRefused('offline', `device ${ctx.id} is offline; add ?queue=true to deliver the command when it comes back`)
    const pending = this.pendingByDevice.get(ctx.id)?.size ?? 0
    if (pending >= this.maxPending) {
      throw new CommandRefused('busy', `device ${ctx.id} has ${pending} commands pending, the limit; wait for their acks${online ? '' : ' or for the device to come back'}`)
    }
    if (!online) {
      const queue = this.queues.get(ctx.id) ?? []
      record.queuedUntil = now + (opts.queueTtlMs ?? this.defaultQueueTtlMs)
      await this.opts.commandLog.insert(record)
      this.queues.set(ctx.id, [...queue, record])
      this.trackPending(record)
      this.changed(record)
      // It may have come back while the record was written.
      this.deliverQueued(ctx.id)
      return record
    }

    const waitMs = opts.waitMs ?? this.defaultWaitMs
    record.sentAt = now
    await this.opts.commandLog.insert(record)
    const settled = this.dispatch(record, ctx, waitMs > 0 ? waitMs : this.defaultWaitMs, payload)
    if (waitMs === 0) return record
    await settled
    return record
  }

  /** Handles a device's ack (from ingest): settles its command and applies the state it reports. */
  handleAck (deviceId: string, payload: Buffer): void {
    const ctx = this.opts.directory.peek(deviceId)
    if (!ctx) return
    const decoded = decodeAck(ctx.model, payload)
    if (!decoded.ok) return this.refuseAck(ctx, payload, decoded.reason)
    const { ack } = decoded
    const flight = this.inFlight.get(ack.id)
    // An ack for another device's command (or one long gone) settles nothing.
    if (!flight || flight.record.deviceId !== deviceId) return this.refuseAck(ctx, payload, `ack for command ${ack.id}, which this device has not been sent or which expired`)
    const { record } = flight
    if (record.ackedAt !== null) return // a duplicate
    const now = Date.now()
    record.status = ack.status
    record.error = ack.status === 'error' ? (ack.error ?? 'the device reported an error without a reason') : null
    record.ackedAt = now
    if (ack.state) {
      const readings: Reading[] = []
      const problems: string[] = []
      for (const [name, value] of Object.entries(ack.state)) {
        const cap = isCapabilityName(name) ? ctx.model.capabilities.get(name) : undefined
        const problem = cap ? checkValue(cap, value, ctx.model.name) : `model ${ctx.model.name} has no capability ${name}`
        if (problem) problems.push(problem)
        else readings.push({ capability: cap!.name, value })
      }
      if (problems.length > 0) this.refuseAck(ctx, payload, `ack state: ${problems.join('; ')}`)
      if (readings.length > 0) {
        record.state = Object.fromEntries(readings.map((r) => [r.capability, r.value]))
        this.opts.state.applyReadings(deviceId, readings, now, now)
        this.opts.writer.writeValues(ctx.series, readings, now)
      }
    }
    clearTimeout(flight.deadline)
    if (flight.forget) clearTimeout(flight.forget)
    // Kept a while so a QoS 1 duplicate of this ack is recognised, not dead-lettered.
    flight.forget = setTimeout(() => this.inFlight.delete(record.id), this.lateAckWindowMs)
    flight.forget.unref()
    this.untrackPending(record)
    this.settle(flight)
  }

  /** The pending desired values of a device, per capability (the newest command wins). */
  desired (deviceId: string): Map<string, DesiredValue> {
    const out = new Map<string, DesiredValue>()
    for (const record of this.pendingByDevice.get(deviceId)?.values() ?? []) {
      for (const [cap, value] of Object.entries(record.request.set ?? {})) {
        const seen = out.get(cap)
        if (!seen || seen.since <= record.createdAt) out.set(cap, { value, command: record.id, since: record.createdAt })
      }
    }
    return out
  }

  async get (deviceId: string, id: string): Promise<CommandRecord | null> {
    const live = this.inFlight.get(id)?.record ?? this.pendingByDevice.get(deviceId)?.get(id)
    if (live && live.deviceId === deviceId) return live
    return await this.opts.commandLog.get(deviceId, id)
  }

  async recent (deviceId: string, limit: number): Promise<CommandRecord[]> {
    return await this.opts.commandLog.recent(deviceId, limit)
  }

  /** Stops timers and listeners; commands still waiting resolve as they stand. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweep)
    clearInterval(this.pruning)
    this.opts.state.off('presence', this.onStateChange)
    this.opts.aedes.off('clientReady', this.onClientReady)
    this.opts.aedes.off('subscribe', this.onSubscribe)
    for (const flight of this.inFlight.values()) {
      clearTimeout(flight.deadline)
      if (flight.forget) clearTimeout(flight.forget)
      for (const w of flight.waiters.splice(0)) w()
    }
    this.inFlight.clear()
    await this.opts.commandLog.flush().catch((err: Error) => this.log.error({ err }, 'command records could not be written at shutdown'))
  }

  // --- sending and settling ---------------------------------------------------

  /** The command in the model's dialect; a CommandRefused when the mapping cannot express it. */
  private encode (ctx: DeviceContext, command: Command): Buffer {
    try {
      return encodeCommand(ctx.model, command)
    } catch (err) {
      if (err instanceof CommandEncodeError) throw new CommandRefused('invalid', err.message)
      throw err
    }
  }

  /** Publishes a record that has `sentAt` set; resolves when it settles or times out. */
  private dispatch (record: CommandRecord, ctx: DeviceContext, timeoutMs: number, encoded?: Buffer): Promise<void> {
    let payload = encoded
    if (!payload) {
      try {
        payload = this.encode(ctx, { id: record.id, ...record.request })
      } catch (err) {
        // The model's mapping changed while the command waited in the queue.
        record.status = 'error'
        record.error = (err as Error).message
        this.untrackPending(record)
        this.changed(record)
        void this.opts.commandLog.update(record).catch((e: Error) => this.log.error({ err: e, commandId: record.id }, 'command status could not be recorded'))
        return Promise.resolve()
      }
    }
    const settled = new Promise<void>((resolve) => {
      const flight: InFlight = {
        record,
        ctx,
        waiters: [resolve],
        deadline: setTimeout(() => this.timeOut(flight, `no ack from device ${ctx.id} within ${timeoutMs} ms`), timeoutMs),
      }
      flight.deadline.unref()
      this.inFlight.set(record.id, flight)
    })
    this.trackPending(record)
    this.changed(record)
    this.opts.aedes.publish({
      cmd: 'publish',
      topic: topics.commands(ctx.id),
      payload,
      qos: 1,
      retain: false,
      dup: false,
    }, (err?: Error) => {
      if (!err) return
      this.log.error({ err, deviceId: ctx.id, commandId: record.id }, 'command could not be published')
      const flight = this.inFlight.get(record.id)
      if (flight) this.timeOut(flight, `the broker could not publish the command: ${err.message}`)
    })
    return settled
  }

  private timeOut (flight: InFlight, reason: string): void {
    const { record } = flight
    if (record.status !== 'pending') return
    record.status = 'timeout'
    record.error = reason
    this.untrackPending(record)
    // A late ack still tells the truth about what the device did.
    flight.forget = setTimeout(() => this.inFlight.delete(record.id), this.lateAckWindowMs)
    flight.forget.unref()
    this.settle(flight)
  }

  private settle (flight: InFlight): void {
    const { record } = flight
    if (!flight.counted) {
      flight.counted = true
      this.counted.labels(record.status).inc()
    }
    const waiters = flight.waiters.splice(0)
    this.opts.commandLog.update(record).then(() => {
      for (const w of waiters) w()
    }, (err: Error) => {
      this.log.error({ err, commandId: record.id }, 'command status could not be recorded')
      for (const w of waiters) w()
    })
    this.changed(record)
  }

  private changed (record: CommandRecord): void {
    this.emit('change', { ...record })
  }

  private refuseAck (ctx: DeviceContext, payload: Buffer, reason: string): void {
    this.opts.metrics.rejected.labels('invalid-ack').inc()
    this.opts.metrics.deadLetters.inc()
    this.opts.deadLetters.record({ deviceId: ctx.id, modelId: ctx.model.id, makerId: ctx.makerId, topic: topics.acks(ctx.id), reason }, payload)
    this.log.debug({ deviceId: ctx.id, reason }, 'ack rejected')
  }

  private trackPending (record: CommandRecord): void {
    let pending = this.pendingByDevice.get(record.deviceId)
    if (!pending) this.pendingByDevice.set(record.deviceId, pending = new Map())
    pending.set(record.id, record)
  }

  private untrackPending (record: CommandRecord): void {
    const pending = this.pendingByDevice.get(record.deviceId)
    if (!pending) return
    pending.delete(record.id)
    if (pending.size === 0) this.pendingByDevice.delete(record.deviceId)
  }

  // --- the offline queue --------------------------------------------------------

  private async restore (): Promise<void> {
    const abandoned = await this.opts.commandLog.abandonInFlight()
    if (abandoned > 0) this.log.warn({ abandoned }, 'commands sent before a restart were never answered')
    for (const record of await this.opts.commandLog.queued()) {
      const queue = this.queues.get(record.deviceId) ?? []
      queue.push(record)
      this.queues.set(record.deviceId, queue)
      this.trackPending(record)
    }
  }

  private readonly onStateChange = (change: { kind: string, deviceId: string, online?: boolean }) => {
    if (change.kind === 'presence' && change.online) this.deliverQueued(change.deviceId)
  }

  private readonly onClientReady = (client: Client) => { this.deliverQueued(client.id) }

  private readonly onSubscribe = (subscriptions: Array<{ topic: string }>, client: Client) => {
    if (client && subscriptions.some((s) => s.topic === topics.commands(client.id))) this.deliverQueued(client.id)
  }

  /**
   * Sends a device's queued commands once it is connected and subscribed to
   * its commands: publishing earlier would lose them for a device without a
   * persistent session.
   */
  private deliverQueued (deviceId: string): void {
    const queue = this.queues.get(deviceId)
    if (!queue || this.closed) return
    const client = (this.opts.aedes as unknown as { clients: Record<string, (Client & { subscriptions?: Record<string, unknown> }) | undefined> }).clients[deviceId]
    if (!client?.subscriptions?.[topics.commands(deviceId)]) return
    this.queues.delete(deviceId)
    void this.opts.directory.get(deviceId).then((ctx) => {
      if (!ctx) return
      const now = Date.now()
      for (const record of queue) {
        if (record.queuedUntil !== null && record.queuedUntil < now) continue
        record.sentAt = Date.now()
        void this.dispatch(record, ctx, this.defaultWaitMs)
        this.opts.commandLog.update(record).catch((err: Error) => this.log.error({ err, commandId: record.id }, 'command delivery could not be recorded'))
      }
      this.expire(queue.filter((r) => r.sentAt === null))
    }, (err: Error) => this.log.error({ err, deviceId }, 'queued commands could not be delivered'))
  }

  private expireQueued (): void {
    const now = Date.now()
    for (const [deviceId, queue] of this.queues) {
      const expired = queue.filter((r) => r.queuedUntil !== null && r.queuedUntil < now)
      if (expired.length === 0) continue
      const kept = queue.filter((r) => !expired.includes(r))
      if (kept.length > 0) this.queues.set(deviceId, kept)
      else this.queues.delete(deviceId)
      this.expire(expired)
    }
  }

  private expire (records: CommandRecord[]): void {
    for (const record of records) {
      record.status = 'timeout'
      record.error = `device ${record.deviceId} did not come back before ${new Date(record.queuedUntil!).toISOString()}, when the queued command expired`
      this.untrackPending(record)
      this.counted.labels('timeout').inc()
      this.opts.commandLog.update(record).catch((err: Error) => this.log.error({ err, commandId: record.id }, 'command expiry could not be recorded'))
      this.changed(record)
    }
  }
}
