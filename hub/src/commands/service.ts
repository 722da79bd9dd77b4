// 340 lines, over the house's ~300: a command's life (sent, in flight, acked,
// timed out, acked late) is one state machine over `inFlight`, kept in one
// place. What stands apart is apart: the offline queue (offline-queue.ts),
// pending counts and desired values (pending.ts), options (options.ts).
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { Counter } from 'prom-client'
import { topics } from '@trellis/device-sdk/topics'
import type { Command, ReadingValue } from '@trellis/device-sdk'
import type { DeviceContext } from '../registry/directory.js'
import type { Reading } from '../normalize/index.js'
import { decodeAck, encodeMessages, type DeviceMessage } from '../normalize/commands.js'
import { CommandEncodeError } from '../normalize/mapping.js'
import { newId } from '../registry/secrets.js'
import type { CommandRecord } from './command-log.js'
import { OfflineQueue, cancelled, type UnsentReason } from './offline-queue.js'
import { PendingCommands, issuerOwns, type DesiredValue } from './pending.js'
import { ackStateReadings, commandProblem, type CommandRequest } from './validate.js'
import { CommandRefused, type CommandServiceOptions, type SendOptions } from './options.js'

export { issuerOwns, type DesiredValue } from './pending.js'
export { CommandRefused, type CommandRefusal, type CommandServiceOptions, type SendOptions } from './options.js'

/** What an acknowledged command awaits: nothing. One set for them all, never added to. */
const acknowledgedAll = new Set<string>()

interface InFlight {
  record: CommandRecord
  ctx: DeviceContext
  waiters: Array<() => void>
  /** The ids of the command's device messages not acknowledged yet; `ok` once it is empty. */
  awaiting: Set<string>
  /** The keys the flight is found by in `inFlight`: the command id and each message's id. */
  keys: string[]
  /**
   * The canonical values each message sets: what a state report must show to
   * acknowledge it (`ack.report`). Null once settled: reports match pending commands only.
   */
  sets: Map<string, Readonly<Record<string, ReadingValue>>> | null
  /** Unset once acknowledged: a settled command is kept a while, and only what a late ack needs stays. */
  deadline?: NodeJS.Timeout
  /** When the command is forgotten (epoch ms): a late ack can no longer count. Unset while it waits for its ack. */
  forgetAt?: number
  /** Counted in `trellis_commands_total` already: a late ack after a timeout changes the record, not the count. */
  counted?: boolean
}

/**
 * Sends owners' commands to devices and follows each to its ack: validates
 * against the model, publishes on the device bus (QoS 1, in the model's dialect),
 * waits for the ack, queues for offline devices within a TTL, and keeps the
 * record in the registry. Emits `change` (CommandRecord) on every status change.
 */
export class CommandService extends EventEmitter {
  private readonly inFlight = new Map<string, InFlight>()
  private readonly pending = new PendingCommands()
  private readonly queue: OfflineQueue
  private readonly defaultWaitMs: number
  private readonly lateAckWindowMs: number
  private readonly defaultQueueTtlMs: number
  private readonly maxPending: number
  private readonly pruning: NodeJS.Timeout
  /**
   * Settled commands in the order they are to be forgotten (the window is the
   * same for all): one timer sweeps them, not a timer per command, since a
   * busy hub settles thousands a second and keeps each for `lateAckWindowMs`.
   */
  private readonly forgetting: Array<{ flight: InFlight, at: number }> = []
  private forgettingHead = 0
  private forgetTimer: NodeJS.Timeout | null = null
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
    this.queue = new OfflineQueue({
      commandLog: opts.commandLog,
      sweepMs: opts.queueSweepMs,
      log: opts.log,
      onEnded: (records, status, reason) => this.endUnsent(records, status, reason),
    })
    const retentionMs = opts.retentionMs ?? 30 * 86_400_000
    this.pruning = setInterval(() => {
      opts.commandLog.prune(Date.now() - retentionMs).then((n) => {
        if (n > 0) this.log.info({ pruned: n }, 'old commands pruned')
      }, (err: Error) => this.log.error({ err }, 'old commands could not be pruned'))
    }, Math.min(retentionMs, 3_600_000))
    this.pruning.unref()
    opts.state.on('presence', this.onStateChange)
    opts.bus.on('commands-ready', this.onCommandsReady)
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
    // The routes and the scheduler check ownership first; this holds whatever calls next.
    if (!issuerOwns({ ownerId, createdAt: Date.now() }, ctx)) throw new CommandRefused('invalid', `device ${ctx.id} is not owned by ${ownerId}`)
    const problem = commandProblem(ctx.model, request)
    if (problem) throw new CommandRefused('invalid', problem)
    const id = newId('cmd')
    // A dialect's mapping may be unable to say what the catalogue allows: refuse before anything is recorded.
    const messages = this.encode(ctx, { id, ...request })
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
    const pending = this.pending.count(ctx.id)
    if (pending >= this.maxPending) {
      throw new CommandRefused('busy', `device ${ctx.id} has ${pending} commands pending, the limit; wait for their acks${online ? '' : ' or for the device to come back'}`)
    }
    if (!online) {
      record.queuedUntil = now + (opts.queueTtlMs ?? this.defaultQueueTtlMs)
      await this.opts.commandLog.insert(record)
      this.queue.add(record)
      this.pending.track(record)
      this.changed(record)
      // It may have come back while the record was written.
      this.deliverQueued(ctx.id)
      return record
    }

    const waitMs = opts.waitMs ?? this.defaultWaitMs
    record.sentAt = now
    await this.opts.commandLog.insert(record)
    const settled = this.dispatch(record, ctx, waitMs > 0 ? waitMs : this.defaultWaitMs, messages)
    if (waitMs === 0) return record
    await settled
    return record
  }

  /**
   * Handles a device's ack (from ingest): settles its command and applies the
   * state it reports. In a cluster (`clustered`) every node sees every ack and
   * only the node that sent the command settles it; the device's own node
   * refuses what cannot be decoded, and nobody an ack for an unknown command.
   */
  handleAck (deviceId: string, payload: Buffer, from: { clustered?: boolean, remote?: boolean } = {}): void {
    const ctx = this.opts.directory.peek(deviceId)
    if (!ctx) return
    const decoded = decodeAck(ctx.model, payload)
    if (!decoded.ok) return from.remote ? undefined : this.refuseAck(ctx, payload, decoded.reason)
    const { ack } = decoded
    const flight = this.inFlight.get(ack.id)
    // An ack for another device's command (or one long gone) settles nothing.
    if (!flight || flight.record.deviceId !== deviceId) {
      if (from.clustered) return
      return this.refuseAck(ctx, payload, `ack for command ${ack.id}, which this device has not been sent or which expired`)
    }
    const { record } = flight
    if (record.ackedAt !== null) return // a duplicate, or a part acked after another failed
    if (!flight.awaiting.has(ack.id)) {
      // A duplicate of a part, or the whole command's id for a command sent as several messages.
      if (ack.id === record.id) this.refuseAck(ctx, payload, `ack for command ${ack.id}, which was sent as ${flight.keys.length - 1} messages; ack each by its own id (${flight.keys.slice(1).join(', ')})`)
      return
    }
    flight.awaiting.delete(ack.id)
    const now = Date.now()
    if (ack.state) {
      const { readings, problems } = ackStateReadings(ctx.model, ack.state)
      if (problems.length > 0) this.refuseAck(ctx, payload, `ack state: ${problems.join('; ')}`)
      if (readings.length > 0) {
        record.state = { ...record.state, ...Object.fromEntries(readings.map((r) => [r.capability, r.value])) } as Record<string, ReadingValue>
        this.opts.state.applyReadings(deviceId, readings, now, now)
        this.opts.writer.writeValues(ctx.series, readings, now)
      }
    }
    // A command sent as several messages is ok once every one is; the first failure is its answer.
    if (ack.status === 'ok' && flight.awaiting.size > 0) return
    this.acknowledged(flight, ack.status, ack.status === 'error' ? (ack.error ?? 'the device reported an error without a reason') : null, now)
  }

  /**
   * Readings of a device that confirms commands by reporting its state
   * (`ack.report`): each message in flight whose values they all show is
   * acknowledged, and a command is ok once all its messages are.
   */
  handleReport (deviceId: string, readings: readonly Reading[]): void {
    const now = Date.now()
    for (const pending of this.pending.of(deviceId)) {
      const flight = this.inFlight.get(pending.id)
      if (!flight || flight.record.ackedAt !== null || flight.record.deviceId !== deviceId) continue
      for (const id of [...flight.awaiting]) {
        const sets = flight.sets?.get(id)
        if (!sets || !Object.entries(sets).every(([cap, value]) => readings.some((r) => r.capability === cap && r.value === value))) continue
        flight.awaiting.delete(id)
        // The report is the device's answer: its values are the state the command left.
        flight.record.state = { ...flight.record.state, ...sets }
      }
      if (flight.awaiting.size === 0) this.acknowledged(flight, 'ok', null, now)
    }
  }

  /** Settles a command its device answered. */
  private acknowledged (flight: InFlight, status: 'ok' | 'error', error: string | null, now: number): void {
    const { record } = flight
    record.status = status
    record.error = error
    record.ackedAt = now
    clearTimeout(flight.deadline)
    // Kept a while (at a busy hub's rate, some 100,000 commands) with no more than a late ack needs:
    // once acked, an ack for it settles nothing, so what it awaited goes.
    flight.deadline = undefined
    flight.awaiting = acknowledgedAll
    flight.sets = null
    // Kept a while so a QoS 1 duplicate of this ack is recognised, not dead-lettered.
    this.forgetLater(flight)
    this.pending.untrack(record)
    this.settle(flight)
  }

  /**
   * The pending desired values of a device, per capability (the newest command
   * wins), of its current owner's commands only.
   */
  desired (deviceId: string): Map<string, DesiredValue> {
    return this.pending.desired(this.opts.directory.peek(deviceId), deviceId)
  }

  /** One command of the device, if its current owner issued it since the device's last release. */
  async get (ctx: DeviceContext, id: string): Promise<CommandRecord | null> {
    if (ctx.ownerId === null) return null
    const live = this.inFlight.get(id)?.record ?? this.pending.find(ctx.id, id)
    if (live && live.deviceId === ctx.id) return issuerOwns(live, ctx) ? live : null
    return await this.opts.commandLog.get(ctx.id, id, { ownerId: ctx.ownerId, since: ctx.releasedAt })
  }

  /** The device's recent commands, newest first: its current owner's, since its last release. */
  async recent (ctx: DeviceContext, limit: number): Promise<CommandRecord[]> {
    if (ctx.ownerId === null) return []
    return await this.opts.commandLog.recent(ctx.id, limit, { ownerId: ctx.ownerId, since: ctx.releasedAt })
  }

  /**
   * The device was released, claimed or otherwise changed: its queued commands
   * of anyone but its current owner are cancelled, and its in-flight ones stop
   * counting as pending. The latest readings that arrived before its last
   * release are forgotten: they were its previous owner's, even those stamped
   * ahead of the release.
   */
  async ownershipChanged (deviceId: string): Promise<void> {
    const ctx = await this.opts.directory.get(deviceId)
    const stale = (r: CommandRecord) => !ctx || !issuerOwns(r, ctx)
    this.endUnsent(this.queue.remove(deviceId, stale), 'error', cancelled)
    for (const record of this.pending.of(deviceId)) if (stale(record)) this.pending.untrack(record)
    if (ctx && ctx.releasedAt !== null) this.opts.state.forgetReadingsBefore(deviceId, ctx.releasedAt)
  }

  /** Stops timers and listeners; commands still waiting resolve as they stand. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.queue.close()
    clearInterval(this.pruning)
    this.opts.state.off('presence', this.onStateChange)
    this.opts.bus.off('commands-ready', this.onCommandsReady)
    if (this.forgetTimer) clearTimeout(this.forgetTimer)
    this.forgetting.length = 0
    this.forgettingHead = 0
    for (const flight of this.inFlight.values()) {
      clearTimeout(flight.deadline)
      for (const w of flight.waiters.splice(0)) w()
    }
    this.inFlight.clear()
    await this.opts.commandLog.flush().catch((err: Error) => this.log.error({ err }, 'command records could not be written at shutdown'))
  }

  // --- sending and settling ---------------------------------------------------

  /** The command in the model's dialect, as its device messages; a CommandRefused when the mapping cannot express it. */
  private encode (ctx: DeviceContext, command: Command): DeviceMessage[] {
    try {
      return encodeMessages(ctx.model, command)
    } catch (err) {
      if (err instanceof CommandEncodeError) throw new CommandRefused('invalid', err.message)
      throw err
    }
  }

  /** Publishes a record that has `sentAt` set; resolves when it settles or times out. */
  private dispatch (record: CommandRecord, ctx: DeviceContext, timeoutMs: number, encoded?: DeviceMessage[]): Promise<void> {
    let messages = encoded
    if (!messages) {
      try {
        messages = this.encode(ctx, { id: record.id, ...record.request })
      } catch (err) {
        // The model's mapping changed while the command waited in the queue.
        record.status = 'error'
        record.error = (err as Error).message
        this.pending.untrack(record)
        this.changed(record)
        void this.opts.commandLog.update(record).catch((e: Error) => this.log.error({ err: e, commandId: record.id }, 'command status could not be recorded'))
        return Promise.resolve()
      }
    }
    const ids = messages.map((m) => m.id)
    const settled = new Promise<void>((resolve) => {
      const flight: InFlight = {
        record,
        ctx,
        waiters: [resolve],
        awaiting: new Set(ids),
        sets: new Map(messages.map((m) => [m.id, m.sets])),
        keys: [record.id, ...ids.filter((id) => id !== record.id)],
        deadline: setTimeout(() => {
          const missing = flight.awaiting.size < ids.length ? ` for ${[...flight.awaiting].join(', ')} (${ids.length - flight.awaiting.size} of ${ids.length} messages acknowledged)` : ''
          this.timeOut(flight, `no ack from device ${ctx.id} within ${timeoutMs} ms${missing}`)
        }, timeoutMs),
      }
      flight.deadline!.unref()
      for (const key of flight.keys) this.inFlight.set(key, flight)
    })
    this.pending.track(record)
    this.changed(record)
    const own = ctx.model.mapping?.topics
    for (const message of messages) {
      this.opts.bus.publishCommand(ctx.id, message.payload, (err?: Error) => {
        if (!err) return
        this.log.error({ err, deviceId: ctx.id, commandId: record.id, messageId: message.id }, 'command could not be published')
        const flight = this.inFlight.get(record.id)
        if (flight) this.timeOut(flight, `the broker could not publish the command: ${err.message}`)
      }, own?.commandTopic(ctx.id, message.key))
    }
    return settled
  }

  private timeOut (flight: InFlight, reason: string): void {
    const { record } = flight
    if (record.status !== 'pending') return
    record.status = 'timeout'
    record.error = reason
    this.pending.untrack(record)
    flight.sets = null
    // A late ack still tells the truth about what the device did.
    this.forgetLater(flight)
    this.settle(flight)
  }

  /** Forgets the flight `lateAckWindowMs` from now; a late ack after its timeout starts the window again. */
  private forgetLater (flight: InFlight): void {
    const at = Date.now() + this.lateAckWindowMs
    flight.forgetAt = at
    this.forgetting.push({ flight, at })
    if (!this.forgetTimer && !this.closed) this.scheduleForgetting(at)
  }

  private scheduleForgetting (at: number): void {
    this.forgetTimer = setTimeout(this.sweepForgotten, Math.max(0, at - Date.now()))
    this.forgetTimer.unref()
  }

  private readonly sweepForgotten = (): void => {
    this.forgetTimer = null
    const now = Date.now()
    const queue = this.forgetting
    let head = this.forgettingHead
    while (head < queue.length && queue[head].at <= now) {
      const { flight, at } = queue[head++]
      // An older entry of a flight whose window started again (a late ack) leaves it.
      if (flight.forgetAt === at) for (const key of flight.keys) this.inFlight.delete(key)
    }
    if (head === queue.length) {
      queue.length = 0
      head = 0
    } else if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head)
      head = 0
    }
    this.forgettingHead = head
    if (head < queue.length) this.scheduleForgetting(queue[head].at)
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

  // --- the offline queue --------------------------------------------------------

  private async restore (): Promise<void> {
    const abandoned = await this.opts.commandLog.abandonInFlight()
    if (abandoned > 0) this.log.warn({ abandoned }, 'commands sent before a restart were never answered')
    for (const record of await this.queue.restore()) this.pending.track(record)
  }

  private readonly onStateChange = (change: { kind: string, deviceId: string, online?: boolean }) => {
    if (change.kind === 'presence' && change.online) this.deliverQueued(change.deviceId)
  }

  private readonly onCommandsReady = (deviceId: string) => { this.deliverQueued(deviceId) }

  /**
   * Sends a device's queued commands once it can receive them (connected and
   * subscribed to its commands: publishing earlier would lose them for a device
   * without a persistent session), each only if its issuer still owns the device.
   */
  private deliverQueued (deviceId: string): void {
    if (this.closed || !this.queue.has(deviceId) || !this.opts.bus.canReceiveCommands(deviceId)) return
    this.queue.release(deviceId, this.opts.directory.get(deviceId), (records, ctx) => {
      const sentAt = Date.now()
      // Every node of a cluster restored the same queue from the log: the one whose claim lands sends.
      this.opts.commandLog.claim(records.map((r) => r.id), sentAt).then((claimed) => {
        for (const record of records) {
          if (!claimed.has(record.id)) {
            this.pending.untrack(record)
            continue
          }
          record.sentAt = sentAt
          void this.dispatch(record, ctx, this.defaultWaitMs)
          this.opts.commandLog.update(record).catch((err: Error) => this.log.error({ err, commandId: record.id }, 'command delivery could not be recorded'))
        }
      }, (err: Error) => {
        for (const record of records) this.queue.add(record)
        this.log.error({ err, deviceId }, 'queued commands could not be claimed; they wait for the next connection')
      })
    })
  }

  /** Ends commands that were never sent (expired, or cancelled by a change of owner). */
  private endUnsent (records: CommandRecord[], status: 'timeout' | 'error', reason: UnsentReason): void {
    for (const record of records) {
      record.status = status
      record.error = reason(record)
      this.pending.untrack(record)
      this.counted.labels(status).inc()
      this.opts.commandLog.update(record).catch((err: Error) => this.log.error({ err, commandId: record.id }, 'command end could not be recorded'))
      this.changed(record)
    }
  }
}
