// Some 440 lines, over the house's ~300: a schedule's life (armed on a shared
// node-cron task, admitted past the owner's and the hub's gates, fired, recorded
// or counted as skipped) shares the timers, the gates and the skip tallies; split
// apart, each piece would reach into the others' maps. What stands apart is
// apart: parsing and bounds (cron-expression.ts), warning tallies
// (cron-warnings.ts), storage (schedule-store.ts).
import cron, { type Logger as CronLogger, type ScheduledTask } from 'node-cron'
import type { Logger } from 'pino'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import { newId } from '../registry/secrets.js'
import { CommandRefused, type CommandService } from '../commands/service.js'
import { commandProblem, type CommandRequest } from '../commands/validate.js'
import type { RunOutcome, Schedule, ScheduleRun, ScheduleStore } from './schedule-store.js'
import { parseCron, scheduleProblem } from './cron-expression.js'
import { WarningTally } from './cron-warnings.js'

export interface SchedulerOptions {
  store: ScheduleStore
  commands: CommandService
  directory: DeviceDirectory
  log: Logger
  /** Schedules per owner at most; one more is refused with 409 SCHEDULE_LIMIT. Default 100. */
  maxPerOwner?: number
  /**
   * Shortest time between two firings of one schedule, in seconds, read on a
   * day's clock; a faster expression is refused with 422 INVALID_SCHEDULE.
   * Default 60. Tests lower it to fire per second.
   */
  minIntervalSeconds?: number
  /**
   * Firings per minute of one owner's schedules together. A new schedule that
   * could take them past it is refused with 422 INVALID_SCHEDULE, and a firing
   * past it (after a daylight-saving jump, or with schedules made under older
   * limits) is skipped. Default 100.
   */
  maxFiringsPerMinutePerOwner?: number
  /**
   * Schedule firings per second across the hub, every owner together (a token
   * bucket refilled at this rate). A firing past it is skipped, counted, and
   * recorded in the schedule's runs with the reason. Default 50.
   */
  maxFiringsPerSecond?: number
  /** Firings the hub-wide bucket holds: how many may fire in the same second, e.g. every schedule set for 07:00. Default 200. */
  firingBurst?: number
  /** Firings being sent at once; the others wait their turn, up to firingBurst of them, and past that are skipped. Default 4. */
  maxConcurrentFirings?: number
  /** Runs kept per schedule, newest first. Default 1000. */
  runsKept?: number
  /** Runs kept of all schedules together, newest first: the table's bound however many owners there are. Default 100 000. */
  maxRunsTotal?: number
  /**
   * Skipped firings of one schedule are written as one `skipped` run at most
   * this often, in ms, with how many were skipped; and across the hub at most
   * maxFiringsPerSecond such runs a second (the rest wait for the schedule's
   * next firing or skip): skipping must not cost a write per firing. Default 60 000.
   */
  skipRecordMs?: number
  /**
   * node-cron's warnings (missed executions when the event loop lags, blocked
   * overlaps) are counted and logged as one line with the counts at most this
   * often, in ms, never one line per firing. Default 60 000.
   */
  cronWarningLogMs?: number
}

/** What the scheduler has done since it started, by kind; `skipped` by reason. */
export interface SchedulerStats {
  fired: number
  skipped: { hubRate: number, ownerRate: number, queueFull: number }
  /** Firings node-cron missed (event loop late by over a second), and firings skipped because the schedule's previous one was still under way. */
  missed: number
  overlaps: number
}

type SkipReason = keyof SchedulerStats['skipped']

/** A schedule the scheduler refuses, with the reason. */
export class ScheduleRefused extends Error {
  constructor (readonly reason: 'invalid' | 'limit', message: string, readonly limit?: number) { super(message) }
}

export interface NewSchedule {
  cron: string
  /** IANA zone the cron expression is read in. */
  timezone: string
  command: CommandRequest
  paused: boolean
}

/**
 * Owners' cron schedules of commands (node-cron, in the schedule's own time
 * zone). Schedules live in the registry and are started again after a
 * restart; every firing is recorded with what became of its command.
 */
export class Scheduler {
  /** One node-cron task per expression and zone, shared by every schedule that has them: a thousand owners' "0 7 * * *" is one timer. */
  private readonly timers = new Map<string, { task: ScheduledTask, schedules: Map<string, Schedule> }>()
  /** Armed schedules' timer keys, by schedule id. */
  private readonly armed = new Map<string, string>()
  /** Schedules whose firing is under way: the next one is skipped as an overlap, not stacked. */
  private readonly inFlight = new Set<string>()
  private readonly maxPerOwner: number
  private readonly minIntervalSeconds: number
  private readonly perOwnerPerMinute: number
  private readonly perSecond: number
  private readonly burst: number
  private readonly maxConcurrent: number
  private readonly runsKept: number
  private readonly maxRunsTotal: number
  private readonly skipRecordMs: number
  /** Runs recorded per schedule since its runs were last pruned. */
  private readonly sincePruned = new Map<string, number>()
  private recordedSinceTotalPrune = 0
  /** Each schedule's most firings in a minute, for the owner's quota; by schedule id. */
  private readonly perMinute = new Map<string, { ownerId: string, n: number }>()
  /** The same summed per owner. */
  private readonly ownerPerMinute = new Map<string, number>()
  /** The hub-wide token bucket. */
  private tokens: number
  private refilledAt = Date.now()
  private recordTokens: number
  private recordRefilledAt = Date.now()
  /** Each owner's firings in the current minute. */
  private readonly ownerWindows = new Map<string, { minute: number, count: number }>()
  private running = 0
  private readonly waiting: Array<() => void> = []
  /** Skipped firings not yet written, by schedule id. */
  private readonly pendingSkips = new Map<string, { count: number, since: Date, reason: string, writtenAt: number }>()
  private readonly counts: SchedulerStats = { fired: 0, skipped: { hubRate: 0, ownerRate: 0, queueFull: 0 }, missed: 0, overlaps: 0 }
  private readonly cronWarnings: WarningTally
  private readonly cronLogger: CronLogger
  private closed = false

  private constructor (private readonly opts: SchedulerOptions) {
    this.maxPerOwner = opts.maxPerOwner ?? 100
    this.minIntervalSeconds = opts.minIntervalSeconds ?? 60
    this.perOwnerPerMinute = opts.maxFiringsPerMinutePerOwner ?? 100
    this.perSecond = opts.maxFiringsPerSecond ?? 50
    this.burst = opts.firingBurst ?? 200
    this.maxConcurrent = opts.maxConcurrentFirings ?? 4
    this.runsKept = opts.runsKept ?? 1000
    this.maxRunsTotal = opts.maxRunsTotal ?? 100_000
    this.skipRecordMs = opts.skipRecordMs ?? 60_000
    this.tokens = this.burst
    this.recordTokens = this.perSecond
    this.cronWarnings = new WarningTally(opts.log, opts.cronWarningLogMs ?? 60_000)
    this.cronLogger = {
      info: () => {},
      debug: () => {},
      warn: (message) => { this.cronWarnings.note(message.startsWith('task still running') ? 'overlap blocked' : 'warning') },
      error: (message, err) => { this.cronWarnings.note('error', err ?? message) },
    }
  }

  /** Starts every schedule the registry holds that is not paused. */
  static async start (opts: SchedulerOptions): Promise<Scheduler> {
    const scheduler = new Scheduler(opts)
    const schedules = await opts.store.all()
    let unparsable = 0
    let tooFast = 0
    for (const s of schedules) {
      const parsed = parseCron(s.cron)
      // Stored before expressions were bounded here: not handed to node-cron again.
      if (!parsed.ok) { unparsable++; continue }
      if (parsed.schedule.minIntervalSeconds < scheduler.minIntervalSeconds) tooFast++
      scheduler.count(s.id, s.ownerId, parsed.schedule.maxPerMinute)
      if (!s.paused) scheduler.arm(s)
    }
    if (schedules.length > 0) opts.log.info({ restored: schedules.length, unparsable, fasterThanMinimum: tooFast }, 'schedules restored')
    await opts.store.pruneAllRuns(scheduler.maxRunsTotal)
    return scheduler
  }

  async create (ownerId: string, device: DeviceContext, input: NewSchedule): Promise<Schedule> {
    const problem = scheduleProblem(input.cron, input.timezone) ?? commandProblem(device.model, input.command)
    if (problem) throw new ScheduleRefused('invalid', problem)
    const parsed = parseCron(input.cron)
    if (!parsed.ok) throw new ScheduleRefused('invalid', parsed.problem)
    const { minIntervalSeconds, maxPerMinute } = parsed.schedule
    if (minIntervalSeconds < this.minIntervalSeconds) {
      throw new ScheduleRefused('invalid', `cron "${input.cron}" fires ${minIntervalSeconds} s apart; schedules may fire at most once every ${this.minIntervalSeconds} s`)
    }
    if (await this.opts.store.countByOwner(ownerId) >= this.maxPerOwner) throw new ScheduleRefused('limit', `at most ${this.maxPerOwner} schedules per owner`, this.maxPerOwner)
    const ownerPerMinute = (this.ownerPerMinute.get(ownerId) ?? 0) + maxPerMinute
    if (ownerPerMinute > this.perOwnerPerMinute) {
      throw new ScheduleRefused('invalid', `with cron "${input.cron}" your schedules could fire ${ownerPerMinute} times in a minute; at most ${this.perOwnerPerMinute}: make one fire less often or delete one`)
    }
    const schedule: Schedule = {
      id: newId('sch'),
      ownerId,
      deviceId: device.id,
      cron: input.cron,
      timezone: input.timezone,
      command: input.command,
      paused: input.paused,
      createdAt: new Date().toISOString(),
    }
    // Counted before the insert, with no await since the check: requests in parallel cannot all pass it.
    this.count(schedule.id, ownerId, maxPerMinute)
    try {
      await this.opts.store.insert(schedule)
    } catch (err) {
      this.uncount(schedule.id)
      throw err
    }
    if (!schedule.paused) this.arm(schedule)
    return schedule
  }

  async list (ownerId: string): Promise<Schedule[]> { return await this.opts.store.byOwner(ownerId) }

  async get (ownerId: string, id: string): Promise<Schedule | null> { return await this.opts.store.get(ownerId, id) }

  async setPaused (ownerId: string, id: string, paused: boolean): Promise<Schedule | null> {
    const schedule = await this.opts.store.setPaused(ownerId, id, paused)
    if (!schedule) return null
    if (paused) this.disarm(id)
    else if (!this.armed.has(id)) this.arm(schedule)
    return schedule
  }

  async delete (ownerId: string, id: string): Promise<boolean> {
    const deleted = await this.opts.store.delete(ownerId, id)
    if (deleted) {
      this.disarm(id)
      this.sincePruned.delete(id)
      this.uncount(id)
      this.pendingSkips.delete(id)
    }
    return deleted
  }

  async runs (scheduleId: string, limit: number): Promise<ScheduleRun[]> {
    return await this.opts.store.runs(scheduleId, limit)
  }

  /** When the schedule fires next, if it is armed. */
  nextRun (id: string): Date | null {
    const key = this.armed.get(id)
    return key === undefined ? null : this.timers.get(key)?.task.getNextRun() ?? null
  }

  /** Counts since start: firings sent, skipped by reason, missed and overlapping. */
  stats (): SchedulerStats {
    return { ...this.counts, skipped: { ...this.counts.skipped } }
  }

  close (): void {
    this.closed = true
    for (const id of [...this.armed.keys()]) this.disarm(id)
    for (const wake of this.waiting.splice(0)) wake()
    this.cronWarnings.flush()
  }

  private count (id: string, ownerId: string, n: number): void {
    this.perMinute.set(id, { ownerId, n })
    this.ownerPerMinute.set(ownerId, (this.ownerPerMinute.get(ownerId) ?? 0) + n)
  }

  private uncount (id: string): void {
    const counted = this.perMinute.get(id)
    if (!counted) return
    this.perMinute.delete(id)
    const left = (this.ownerPerMinute.get(counted.ownerId) ?? 0) - counted.n
    if (left > 0) this.ownerPerMinute.set(counted.ownerId, left)
    else this.ownerPerMinute.delete(counted.ownerId)
  }

  private arm (schedule: Schedule): void {
    // Only expressions the parser read (perMinute holds those) ever reach node-cron, resumed ones included.
    if (this.closed || this.armed.has(schedule.id) || !this.perMinute.has(schedule.id)) return
    const key = `${schedule.timezone} ${schedule.cron}`
    let timer = this.timers.get(key)
    if (!timer) {
      const schedules = new Map<string, Schedule>()
      // node-cron costs about 0.1 ms of CPU per task and tick, whatever the task does: one task per expression, not per schedule.
      const task = cron.schedule(schedule.cron, () => { for (const s of [...schedules.values()]) void this.tick(s) }, {
        timezone: schedule.timezone,
        name: `schedules ${key}`,
        logger: this.cronLogger,
        // Counted here and logged as one line a minute: one warning per missed firing was 700 lines a second.
        suppressMissedWarning: true,
      })
      task.on('execution:missed', () => {
        this.counts.missed += schedules.size
        this.cronWarnings.note('missed execution', undefined, schedules.size)
      })
      timer = { task, schedules }
      this.timers.set(key, timer)
    }
    timer.schedules.set(schedule.id, schedule)
    this.armed.set(schedule.id, key)
  }

  /** One firing: skipped if the last is still under way, else through the limits and sent in turn. */
  private async tick (schedule: Schedule): Promise<void> {
    if (this.inFlight.has(schedule.id)) {
      this.counts.overlaps++
      this.cronWarnings.note('overlap skipped')
      return
    }
    this.inFlight.add(schedule.id)
    try {
      await this.admitAndFire(schedule)
    } finally {
      this.inFlight.delete(schedule.id)
    }
  }

  private async admitAndFire (schedule: Schedule): Promise<void> {
    const firedAt = new Date()
    const reason = this.admit(schedule.ownerId, firedAt.getTime())
    if (reason) return await this.skip(schedule, firedAt, reason)
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.burst) return await this.skip(schedule, firedAt, 'queueFull')
      await new Promise<void>((resolve) => this.waiting.push(resolve))
      if (this.closed) return
    }
    this.running++
    try {
      await this.recordSkips(schedule, firedAt)
      await this.fire(schedule, firedAt)
    } finally {
      this.running--
      this.waiting.shift()?.()
    }
  }

  /** Takes one firing from the owner's minute and the hub's bucket, or says which limit holds it back. */
  private admit (ownerId: string, now: number): SkipReason | null {
    const minute = Math.floor(now / 60_000)
    let window = this.ownerWindows.get(ownerId)
    if (!window || window.minute !== minute) {
      // Old windows go as owners fire again; the map holds at most one entry per owner with schedules.
      window = { minute, count: 0 }
      this.ownerWindows.set(ownerId, window)
    }
    if (window.count >= this.perOwnerPerMinute) return 'ownerRate'
    this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) * this.perSecond / 1000)
    this.refilledAt = now
    if (this.tokens < 1) return 'hubRate'
    this.tokens--
    window.count++
    return null
  }

  /** Counts a skipped firing; writes it, with those skipped before it, at most once per skipRecordMs per schedule. */
  private async skip (schedule: Schedule, firedAt: Date, reason: SkipReason): Promise<void> {
    this.counts.skipped[reason]++
    const why = {
      hubRate: `the hub's limit of ${this.perSecond} schedule firings a second was reached`,
      ownerRate: `your limit of ${this.perOwnerPerMinute} schedule firings a minute was reached`,
      queueFull: `${this.burst} firings were already waiting to be sent`,
    }[reason]
    const now = firedAt.getTime()
    const pending = this.pendingSkips.get(schedule.id) ?? { count: 0, since: firedAt, reason: why, writtenAt: 0 }
    pending.count++
    pending.reason = why
    this.pendingSkips.set(schedule.id, pending)
    // Writing the skip takes a token of its own bucket: skipping 1,000 schedules at once must not cost 1,000 writes.
    if (now - pending.writtenAt < this.skipRecordMs || !this.takeRecordToken(now)) return
    await this.recordSkips(schedule, firedAt)
  }

  /** Writes the schedule's pending skips as one `skipped` run, if it has any and skipRecordMs has passed since the last. */
  private async recordSkips (schedule: Schedule, at: Date): Promise<void> {
    const pending = this.pendingSkips.get(schedule.id)
    if (!pending || pending.count === 0 || this.closed || at.getTime() - pending.writtenAt < this.skipRecordMs) return
    const error = `${pending.count} firing${pending.count === 1 ? '' : 's'} skipped since ${pending.since.toISOString()}: ${pending.reason}`
    this.pendingSkips.set(schedule.id, { count: 0, since: at, reason: pending.reason, writtenAt: at.getTime() })
    await this.record(schedule, { firedAt: at, outcome: 'skipped', commandId: null, error })
  }

  /** The bucket of skip records: as many a second as firings, a second's worth at once. */
  private takeRecordToken (now: number): boolean {
    this.recordTokens = Math.min(this.perSecond, this.recordTokens + (now - this.recordRefilledAt) * this.perSecond / 1000)
    this.recordRefilledAt = now
    if (this.recordTokens < 1) return false
    this.recordTokens--
    return true
  }

  private disarm (id: string): void {
    const key = this.armed.get(id)
    if (key === undefined) return
    this.armed.delete(id)
    const timer = this.timers.get(key)!
    timer.schedules.delete(id)
    if (timer.schedules.size > 0) return
    this.timers.delete(key)
    void timer.task.destroy()
  }

  /** Sends the schedule's command and records the run; never throws. */
  private async fire (schedule: Schedule, firedAt: Date): Promise<void> {
    this.counts.fired++
    const log = this.opts.log.child({ scheduleId: schedule.id, deviceId: schedule.deviceId })
    let outcome: RunOutcome = 'sent'
    let commandId: string | null = null
    let error: string | null = null
    try {
      const ctx = await this.opts.directory.get(schedule.deviceId)
      if (!ctx || ctx.ownerId !== schedule.ownerId) {
        outcome = 'failed'
        error = `device ${schedule.deviceId} is no longer the owner's`
      } else {
        // Not waiting for the ack: the run refers to its command, whose status the ack settles.
        commandId = (await this.opts.commands.send(ctx, schedule.ownerId, schedule.command, { waitMs: 0, origin: 'schedule' })).id
      }
    } catch (err) {
      if (err instanceof CommandRefused) {
        outcome = err.reason
        error = err.message
      } else {
        outcome = 'failed'
        error = (err as Error).message
        log.error({ err }, 'schedule firing failed')
      }
    }
    await this.record(schedule, { firedAt, outcome, commandId, error })
  }

  /** Writes a run and prunes now and then; never throws. */
  private async record (schedule: Schedule, run: { firedAt: Date, outcome: RunOutcome, commandId: string | null, error: string | null }): Promise<void> {
    if (this.closed) return
    try {
      await this.opts.store.recordRun(schedule.id, run)
      // Pruning every tenth of the kept count bounds the table at 1.1 × runsKept per schedule,
      const since = (this.sincePruned.get(schedule.id) ?? 0) + 1
      this.sincePruned.set(schedule.id, since)
      if (since >= Math.max(1, Math.floor(this.runsKept / 10))) {
        this.sincePruned.set(schedule.id, 0)
        await this.opts.store.pruneRuns(schedule.id, this.runsKept)
      }
      // and at 1.1 × maxRunsTotal in all.
      if (++this.recordedSinceTotalPrune >= Math.max(1, Math.floor(this.maxRunsTotal / 10))) {
        this.recordedSinceTotalPrune = 0
        await this.opts.store.pruneAllRuns(this.maxRunsTotal)
      }
    } catch (err) {
      this.opts.log.error({ err, scheduleId: schedule.id }, 'schedule run could not be recorded')
    }
  }
}
