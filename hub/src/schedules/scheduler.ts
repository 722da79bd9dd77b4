import cron, { type ScheduledTask } from 'node-cron'
import type { Logger } from 'pino'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import { newId } from '../registry/secrets.js'
import { CommandRefused, type CommandService } from '../commands/service.js'
import { commandProblem, type CommandRequest } from '../commands/validate.js'
import type { RunOutcome, Schedule, ScheduleRun, ScheduleStore } from './schedule-store.js'

export interface SchedulerOptions {
  store: ScheduleStore
  commands: CommandService
  directory: DeviceDirectory
  log: Logger
  /** Schedules per owner at most. Default 100. */
  maxPerOwner?: number
  /** Runs kept per schedule, newest first: a per-second schedule would otherwise grow without end. Default 1000. */
  runsKept?: number
}

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
  private readonly tasks = new Map<string, ScheduledTask>()
  private readonly maxPerOwner: number
  private readonly runsKept: number
  /** Runs recorded per schedule since its runs were last pruned. */
  private readonly sincePruned = new Map<string, number>()
  private closed = false

  private constructor (private readonly opts: SchedulerOptions) {
    this.maxPerOwner = opts.maxPerOwner ?? 100
    this.runsKept = opts.runsKept ?? 1000
  }

  /** Starts every schedule the registry holds that is not paused. */
  static async start (opts: SchedulerOptions): Promise<Scheduler> {
    const scheduler = new Scheduler(opts)
    const schedules = await opts.store.all()
    for (const s of schedules) if (!s.paused) scheduler.arm(s)
    if (schedules.length > 0) opts.log.info({ restored: schedules.length }, 'schedules restored')
    return scheduler
  }

  async create (ownerId: string, device: DeviceContext, input: NewSchedule): Promise<Schedule> {
    const problem = scheduleProblem(input.cron, input.timezone) ?? commandProblem(device.model, input.command)
    if (problem) throw new ScheduleRefused('invalid', problem)
    if (await this.opts.store.countByOwner(ownerId) >= this.maxPerOwner) throw new ScheduleRefused('limit', `at most ${this.maxPerOwner} schedules per owner`, this.maxPerOwner)
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
    await this.opts.store.insert(schedule)
    if (!schedule.paused) this.arm(schedule)
    return schedule
  }

  async list (ownerId: string): Promise<Schedule[]> { return await this.opts.store.byOwner(ownerId) }

  async get (ownerId: string, id: string): Promise<Schedule | null> { return await this.opts.store.get(ownerId, id) }

  async setPaused (ownerId: string, id: string, paused: boolean): Promise<Schedule | null> {
    const schedule = await this.opts.store.setPaused(ownerId, id, paused)
    if (!schedule) return null
    if (paused) this.disarm(id)
    else if (!this.tasks.has(id)) this.arm(schedule)
    return schedule
  }

  async delete (ownerId: string, id: string): Promise<boolean> {
    const deleted = await this.opts.store.delete(ownerId, id)
    if (deleted) {
      this.disarm(id)
      this.sincePruned.delete(id)
    }
    return deleted
  }

  async runs (scheduleId: string, limit: number): Promise<ScheduleRun[]> {
    return await this.opts.store.runs(scheduleId, limit)
  }

  /** When the schedule fires next, if it is armed. */
  nextRun (id: string): Date | null {
    return this.tasks.get(id)?.getNextRun() ?? null
  }

  close (): void {
    this.closed = true
    for (const id of [...this.tasks.keys()]) this.disarm(id)
  }

  private arm (schedule: Schedule): void {
    if (this.closed) return
    const task = cron.schedule(schedule.cron, () => this.fire(schedule), { timezone: schedule.timezone, name: `schedule-${schedule.id}`, noOverlap: true })
    this.tasks.set(schedule.id, task)
  }

  private disarm (id: string): void {
    const task = this.tasks.get(id)
    if (!task) return
    this.tasks.delete(id)
    void task.destroy()
  }

  /** Sends the schedule's command and records the run; never throws. */
  private async fire (schedule: Schedule): Promise<void> {
    const firedAt = new Date()
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
    if (this.closed) return
    try {
      await this.opts.store.recordRun(schedule.id, { firedAt, outcome, commandId, error })
      // Pruning every tenth of the kept count bounds the table at 1.1 × runsKept per schedule.
      const since = (this.sincePruned.get(schedule.id) ?? 0) + 1
      this.sincePruned.set(schedule.id, since)
      if (since >= Math.max(1, Math.floor(this.runsKept / 10))) {
        this.sincePruned.set(schedule.id, 0)
        await this.opts.store.pruneRuns(schedule.id, this.runsKept)
      }
    } catch (err) {
      log.error({ err }, 'schedule run could not be recorded')
    }
  }
}

/** Why a cron expression and time zone cannot be scheduled, or null. */
export function scheduleProblem (expression: string, timezone: string): string | null {
  const validation = cron.validateDetailed(expression)
  if (!validation.valid) {
    const detail = validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ')
    return `cron "${expression}" is not valid (${detail}); use five fields, or six with seconds first, e.g. "0 23 * * *"`
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone })
  } catch {
    return `time zone "${timezone}" is not an IANA zone such as Europe/Berlin or UTC`
  }
  return null
}
