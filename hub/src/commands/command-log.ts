import type { ReadingValue } from '@trellis/device-sdk'
import type { SqlClient } from '../registry/sql.js'
import { migrate } from '../registry/migrate.js'
import type { CommandRequest } from './validate.js'

export type CommandStatus = 'pending' | 'ok' | 'error' | 'timeout'
export type CommandOrigin = 'api' | 'schedule' | 'automation'

/** One command as the hub keeps it: from request to ack, timeout or expiry. */
export interface CommandRecord {
  id: string
  deviceId: string
  ownerId: string
  origin: CommandOrigin
  request: CommandRequest
  status: CommandStatus
  error: string | null
  /** The state the device reported in its ack. */
  state: Record<string, ReadingValue> | null
  /** epoch ms */
  createdAt: number
  /** When it was published to the device; null while it waits in the offline queue. */
  sentAt: number | null
  ackedAt: number | null
  /** A queued command is dropped (as `timeout`) if the device is not back by then. */
  queuedUntil: number | null
}

const schema = `
CREATE TABLE IF NOT EXISTS commands (
  id text PRIMARY KEY,
  device_id text NOT NULL,
  owner_id text NOT NULL,
  origin text NOT NULL,
  request jsonb NOT NULL,
  status text NOT NULL,
  error text,
  state jsonb,
  created_at timestamptz NOT NULL,
  sent_at timestamptz,
  acked_at timestamptz,
  queued_until timestamptz
);
CREATE INDEX IF NOT EXISTS commands_device_created ON commands (device_id, created_at DESC);
CREATE INDEX IF NOT EXISTS commands_queued ON commands (queued_until) WHERE status = 'pending' AND sent_at IS NULL;
`

interface CommandRow {
  id: string
  device_id: string
  owner_id: string
  origin: CommandOrigin
  request: CommandRequest
  status: CommandStatus
  error: string | null
  state: Record<string, ReadingValue> | null
  created_at: Date
  sent_at: Date | null
  acked_at: Date | null
  queued_until: Date | null
}

/**
 * Whose commands a reader may see: an owner sees only the commands they issued
 * since the device's last release (epoch ms; null when never released), so a
 * device's next owner sees nothing of its previous one.
 */
export interface OwnerView { ownerId: string, since: number | null }

function seenBy (c: CommandRecord, view: OwnerView): boolean {
  return c.ownerId === view.ownerId && (view.since === null || c.createdAt > view.since)
}

const ms = (d: Date | null): number | null => d === null ? null : new Date(d).getTime()
const ts = (n: number | null): Date | null => n === null ? null : new Date(n)

function toRecord (r: CommandRow): CommandRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    ownerId: r.owner_id,
    origin: r.origin,
    request: r.request,
    status: r.status,
    error: r.error,
    state: r.state,
    createdAt: ms(r.created_at)!,
    sentAt: ms(r.sent_at),
    ackedAt: ms(r.acked_at),
    queuedUntil: ms(r.queued_until),
  }
}

/**
 * Commands in the registry's SQL database, in a table of their own. Writes are
 * behind: a command's record is written within `flushIntervalMs`, many
 * commands in one statement, so the registry is off the command round trip
 * (the embedded registry's writes were half the CPU of a command). A command
 * queued for an offline device is written before `insert` resolves, since it
 * must outlive a restart. Reads see unwritten records.
 */
export class CommandLog {
  private readonly unwritten = new Map<string, CommandRecord>()
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> | null = null

  private constructor (private readonly db: SqlClient, private readonly flushIntervalMs: number) {}

  /** `flushIntervalMs`: how long a record may wait to be written. Default 20. */
  static async open (db: SqlClient, opts: { flushIntervalMs?: number } = {}): Promise<CommandLog> {
    await migrate(db, 'commands', [{ version: 1, name: 'commands', sql: schema }])
    return new CommandLog(db, opts.flushIntervalMs ?? 20)
  }

  async insert (c: CommandRecord): Promise<void> {
    this.unwritten.set(c.id, c)
    if (c.sentAt === null && c.queuedUntil !== null) await this.flush()
    else this.schedule()
  }

  /** Saves what changes over a command's life. */
  async update (c: CommandRecord): Promise<void> {
    this.unwritten.set(c.id, c)
    this.schedule()
  }

  /** Writes every record not written yet. */
  async flush (): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    while (this.flushing) await this.flushing
    if (this.unwritten.size === 0) return
    const batch = [...this.unwritten.values()]
    this.unwritten.clear()
    this.flushing = this.write(batch).catch((err: unknown) => {
      // Put them back unless a newer state of the same command arrived meanwhile.
      for (const c of batch) if (!this.unwritten.has(c.id)) this.unwritten.set(c.id, c)
      throw err
    }).finally(() => { this.flushing = null })
    await this.flushing
  }

  private schedule (): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.flush().catch(() => this.schedule())
    }, this.flushIntervalMs)
    this.timer.unref()
  }

  private async write (batch: CommandRecord[]): Promise<void> {
    const col = <T>(f: (c: CommandRecord) => T): T[] => batch.map(f)
    await this.db.query(
      `INSERT INTO commands (id, device_id, owner_id, origin, request, status, error, state, created_at, sent_at, acked_at, queued_until)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::jsonb[],
                            $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, state = excluded.state,
         sent_at = excluded.sent_at, acked_at = excluded.acked_at, queued_until = excluded.queued_until`,
      [col((c) => c.id), col((c) => c.deviceId), col((c) => c.ownerId), col((c) => c.origin), col((c) => JSON.stringify(c.request)),
        col((c) => c.status), col((c) => c.error), col((c) => c.state && JSON.stringify(c.state)),
        col((c) => ts(c.createdAt)), col((c) => ts(c.sentAt)), col((c) => ts(c.ackedAt)), col((c) => ts(c.queuedUntil))])
  }

  /** One command of the device; with `view`, only if that owner issued it after `view.since`. */
  async get (deviceId: string, id: string, view?: OwnerView): Promise<CommandRecord | null> {
    const unwritten = this.unwritten.get(id)
    if (unwritten) return unwritten.deviceId === deviceId && (!view || seenBy(unwritten, view)) ? unwritten : null
    const rows = await this.db.query<CommandRow>('SELECT * FROM commands WHERE id = $1 AND device_id = $2', [id, deviceId])
    const found = rows[0] ? toRecord(rows[0]) : null
    return found && (!view || seenBy(found, view)) ? found : null
  }

  /** The device's most recent commands, newest first; with `view`, only those that owner issued after `view.since`. */
  async recent (deviceId: string, limit: number, view?: OwnerView): Promise<CommandRecord[]> {
    await this.flush()
    const rows = view
      ? await this.db.query<CommandRow>(
        'SELECT * FROM commands WHERE device_id = $1 AND owner_id = $3 AND created_at > $4 ORDER BY created_at DESC, id DESC LIMIT $2',
        [deviceId, limit, view.ownerId, new Date(view.since ?? 0)])
      : await this.db.query<CommandRow>('SELECT * FROM commands WHERE device_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2', [deviceId, limit])
    return rows.map(toRecord)
  }

  /**
   * Commands that were sent but not answered when the hub stopped: their ack
   * can no longer be matched, so they end as `timeout`. Returns how many.
   */
  async abandonInFlight (): Promise<number> {
    await this.flush()
    const rows = await this.db.query<{ id: string }>(
      "UPDATE commands SET status = 'timeout', error = 'the hub restarted before the device answered' WHERE status = 'pending' AND sent_at IS NOT NULL RETURNING id")
    return rows.length
  }

  /** Deletes settled commands created before `before` (epoch ms). Returns how many. */
  async prune (before: number): Promise<number> {
    await this.flush()
    const rows = await this.db.query<{ id: string }>("DELETE FROM commands WHERE created_at < $1 AND status <> 'pending' RETURNING id", [new Date(before)])
    return rows.length
  }

  /**
   * Claims queued commands for sending, at `sentAt` (epoch ms): returns the ids
   * no one had claimed (sent) before, now marked sent. Every node of a cluster
   * restores the whole queue from the log, so each must claim a command
   * before sending it: exactly one then does.
   */
  async claim (ids: string[], sentAt: number): Promise<Set<string>> {
    if (ids.some((id) => this.unwritten.has(id))) await this.flush()
    const rows = await this.db.query<{ id: string }>(
      "UPDATE commands SET sent_at = $2 WHERE id = ANY($1::text[]) AND status = 'pending' AND sent_at IS NULL RETURNING id",
      [ids, new Date(sentAt)])
    return new Set(rows.map((r) => r.id))
  }

  /** Commands still waiting in the offline queue (after a restart, say), oldest first. */
  async queued (): Promise<CommandRecord[]> {
    await this.flush()
    const rows = await this.db.query<CommandRow>(
      "SELECT * FROM commands WHERE status = 'pending' AND sent_at IS NULL AND queued_until IS NOT NULL ORDER BY created_at, id")
    return rows.map(toRecord)
  }
}
