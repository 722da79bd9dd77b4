import type { SqlClient } from '../registry/sql.js'
import { migrate } from '../registry/migrate.js'
import type { CommandRequest } from '../commands/validate.js'

export interface Schedule {
  id: string
  ownerId: string
  deviceId: string
  cron: string
  timezone: string
  command: CommandRequest
  paused: boolean
  createdAt: string
}

/**
 * What became of one firing: `sent` (the command's own status tells the rest) or why nothing was sent.
 * `skipped`: a firing limit held it back; one such run stands for every firing skipped since the last one, its error says how many and why.
 */
/** What became of a firing; `skipped`: a run-time quota held it back (its error says which). */
export const runOutcomes = ['sent', 'offline', 'invalid', 'busy', 'failed', 'skipped'] as const
export type RunOutcome = typeof runOutcomes[number]

export interface ScheduleRun {
  firedAt: string
  outcome: RunOutcome
  commandId: string | null
  /** The command's current status when one was sent, else the outcome. */
  status: string
  error: string | null
}

const schema = `
CREATE TABLE IF NOT EXISTS schedules (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  device_id text NOT NULL,
  cron text NOT NULL,
  timezone text NOT NULL,
  command jsonb NOT NULL,
  paused boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS schedules_owner ON schedules (owner_id);
CREATE TABLE IF NOT EXISTS schedule_runs (
  id bigserial PRIMARY KEY,
  schedule_id text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
  fired_at timestamptz NOT NULL,
  outcome text NOT NULL,
  command_id text,
  error text
);
CREATE INDEX IF NOT EXISTS schedule_runs_schedule ON schedule_runs (schedule_id, fired_at DESC);
`

interface ScheduleRow { id: string, owner_id: string, device_id: string, cron: string, timezone: string, command: CommandRequest, paused: boolean, created_at: Date }

function toSchedule (r: ScheduleRow): Schedule {
  return { id: r.id, ownerId: r.owner_id, deviceId: r.device_id, cron: r.cron, timezone: r.timezone, command: r.command, paused: r.paused, createdAt: new Date(r.created_at).toISOString() }
}

/**
 * Schedules and their runs in the registry's SQL database, in tables of
 * their own. Runs join the `commands` table for their command's status, so
 * open the CommandLog first.
 */
export class ScheduleStore {
  private constructor (private readonly db: SqlClient) {}

  static async open (db: SqlClient): Promise<ScheduleStore> {
    await migrate(db, 'schedules', [{ version: 1, name: 'schedules and their runs', sql: schema }])
    return new ScheduleStore(db)
  }

  async insert (s: Schedule): Promise<void> {
    await this.db.query(
      'INSERT INTO schedules (id, owner_id, device_id, cron, timezone, command, paused, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [s.id, s.ownerId, s.deviceId, s.cron, s.timezone, JSON.stringify(s.command), s.paused, s.createdAt])
  }

  async all (): Promise<Schedule[]> {
    return (await this.db.query<ScheduleRow>('SELECT * FROM schedules ORDER BY created_at, id')).map(toSchedule)
  }

  async byOwner (ownerId: string): Promise<Schedule[]> {
    return (await this.db.query<ScheduleRow>('SELECT * FROM schedules WHERE owner_id = $1 ORDER BY created_at, id', [ownerId])).map(toSchedule)
  }

  async countByOwner (ownerId: string): Promise<number> {
    const rows = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM schedules WHERE owner_id = $1', [ownerId])
    return rows[0].n
  }

  async get (ownerId: string, id: string): Promise<Schedule | null> {
    const rows = await this.db.query<ScheduleRow>('SELECT * FROM schedules WHERE id = $1 AND owner_id = $2', [id, ownerId])
    return rows[0] ? toSchedule(rows[0]) : null
  }

  async setPaused (ownerId: string, id: string, paused: boolean): Promise<Schedule | null> {
    const rows = await this.db.query<ScheduleRow>('UPDATE schedules SET paused = $3 WHERE id = $1 AND owner_id = $2 RETURNING *', [id, ownerId, paused])
    return rows[0] ? toSchedule(rows[0]) : null
  }

  async delete (ownerId: string, id: string): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>('DELETE FROM schedules WHERE id = $1 AND owner_id = $2 RETURNING id', [id, ownerId])
    return rows.length > 0
  }

  async recordRun (scheduleId: string, run: { firedAt: Date, outcome: RunOutcome, commandId: string | null, error: string | null }): Promise<void> {
    await this.db.query('INSERT INTO schedule_runs (schedule_id, fired_at, outcome, command_id, error) VALUES ($1, $2, $3, $4, $5)',
      [scheduleId, run.firedAt, run.outcome, run.commandId, run.error])
  }

  /** Keeps a schedule's newest `keep` runs and deletes the rest. */
  async pruneRuns (scheduleId: string, keep: number): Promise<void> {
    await this.db.query(
      `DELETE FROM schedule_runs WHERE schedule_id = $1 AND id NOT IN (
         SELECT id FROM schedule_runs WHERE schedule_id = $1 ORDER BY id DESC LIMIT $2)`, [scheduleId, keep])
  }

  /** Keeps the newest `keep` runs of all schedules together and deletes the rest. */
  async pruneAllRuns (keep: number): Promise<void> {
    await this.db.query(
      'DELETE FROM schedule_runs WHERE id < (SELECT id FROM schedule_runs ORDER BY id DESC OFFSET $1 LIMIT 1)', [Math.max(0, keep - 1)])
  }

  /** Runs of all schedules together. */
  async countAllRuns (): Promise<number> {
    return (await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM schedule_runs'))[0].n
  }

  /** A schedule's runs, newest first, each with its command's current status. */
  async runs (scheduleId: string, limit: number): Promise<ScheduleRun[]> {
    const rows = await this.db.query<{ fired_at: Date, outcome: RunOutcome, command_id: string | null, status: string | null, run_error: string | null, command_error: string | null }>(
      `SELECT r.fired_at, r.outcome, r.command_id, c.status, r.error AS run_error, c.error AS command_error
       FROM schedule_runs r LEFT JOIN commands c ON c.id = r.command_id
       WHERE r.schedule_id = $1 ORDER BY r.fired_at DESC, r.id DESC LIMIT $2`, [scheduleId, limit])
    return rows.map((r) => ({
      firedAt: new Date(r.fired_at).toISOString(),
      outcome: r.outcome,
      commandId: r.command_id,
      status: r.status ?? r.outcome,
      error: r.run_error ?? r.command_error,
    }))
  }
}
