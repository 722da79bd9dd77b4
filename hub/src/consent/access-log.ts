import type { Logger } from 'pino'
import type { SqlClient } from '../registry/sql.js'
import { migrate } from '../registry/migrate.js'

/** One read of an owner's device by someone else under a grant. */
export interface AccessEntry {
  ownerId: string
  /** `maker:{id}` or `app:{id}`. */
  actor: string
  grantId: string
  deviceId: string
  /** What was read: the device view, a history query, the device listing. */
  kind: 'state' | 'history' | 'list'
  capabilities: string[]
}
export interface AccessRecord extends AccessEntry { id: string, /** First read of the batch. */ at: string, /** Reads folded into this record. */ reads: number }

export interface AccessLogOptions {
  /** Write pending reads after this many ms. Default 1000. */
  flushIntervalMs?: number
  /** Distinct reads held waiting; beyond this, new ones are counted in `dropped`. Default 10000. */
  maxPending?: number
  /** Records older than this are deleted every `pruneIntervalMs`. Default 90 days. */
  retentionMs?: number
  /** Default 1 hour. */
  pruneIntervalMs?: number
}

const schema = `
CREATE TABLE access_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  owner_id text NOT NULL,
  actor text NOT NULL,
  grant_id text NOT NULL,
  device_id text NOT NULL,
  kind text NOT NULL,
  capabilities text[] NOT NULL,
  reads integer NOT NULL
);
CREATE INDEX access_log_owner ON access_log (owner_id, id DESC);
CREATE INDEX access_log_at ON access_log (at);
`

const PRUNE_CHUNK = 1000

/**
 * The owner's log of reads under grants. A read costs a map update: the same
 * read repeated within a flush interval (a dashboard polling) folds into one
 * record with a count, and a batch is one insert.
 */
export class AccessLog {
  private pending = new Map<string, { entry: AccessEntry, at: number, reads: number }>()
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> = Promise.resolve()
  private readonly flushIntervalMs: number
  private readonly maxPending: number
  private readonly retentionMs: number
  private readonly pruning: NodeJS.Timeout
  /** Reads not logged because too many were pending. */
  dropped = 0

  private constructor (private readonly db: SqlClient, private readonly log: Logger, opts: AccessLogOptions) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000
    this.maxPending = opts.maxPending ?? 10_000
    this.retentionMs = opts.retentionMs ?? 90 * 86_400_000
    this.pruning = setInterval(() => {
      this.prune().catch((err: Error) => this.log.error({ err }, 'old access records could not be pruned'))
    }, opts.pruneIntervalMs ?? 3_600_000)
    this.pruning.unref()
  }

  static async open (db: SqlClient, log: Logger, opts: AccessLogOptions = {}): Promise<AccessLog> {
    await migrate(db, 'access-log', [{ version: 1, name: 'reads under grants', sql: schema }])
    return new AccessLog(db, log, opts)
  }

  record (entry: AccessEntry, now = Date.now()): void {
    const key = `${entry.ownerId}\u0000${entry.actor}\u0000${entry.grantId}\u0000${entry.deviceId}\u0000${entry.kind}\u0000${entry.capabilities.join(',')}`
    const hit = this.pending.get(key)
    if (hit) { hit.reads++; return }
    if (this.pending.size >= this.maxPending) { this.dropped++; return }
    this.pending.set(key, { entry, at: now, reads: 1 })
    this.timer ??= setTimeout(() => { this.timer = null; void this.flush() }, this.flushIntervalMs)
  }

  /** Writes what is pending; resolves when it is stored. */
  async flush (): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    const batch = [...this.pending.values()]
    this.pending = new Map()
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return
      try {
        await this.db.query(
          `INSERT INTO access_log (at, owner_id, actor, grant_id, device_id, kind, capabilities, reads)
           SELECT to_timestamp(at / 1000.0), owner_id, actor, grant_id, device_id, kind, string_to_array(caps, ','), reads
           FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[])
             AS t (at, owner_id, actor, grant_id, device_id, kind, caps, reads)`,
          [batch.map((b) => b.at), batch.map((b) => b.entry.ownerId), batch.map((b) => b.entry.actor), batch.map((b) => b.entry.grantId),
            batch.map((b) => b.entry.deviceId), batch.map((b) => b.entry.kind), batch.map((b) => b.entry.capabilities.join(',')), batch.map((b) => b.reads)])
      } catch (err) {
        this.log.error({ err, entries: batch.length }, 'access records could not be stored')
      }
    })
    await this.flushing
  }

  /** The owner's access records, newest first; `before` is the id to page back from. */
  async read (ownerId: string, page: { limit: number, before?: string, deviceId?: string }): Promise<AccessRecord[]> {
    await this.flush()
    const rows = await this.db.query<{ id: string, at: Date, owner_id: string, actor: string, grant_id: string, device_id: string, kind: AccessEntry['kind'], capabilities: string[], reads: number }>(
      `SELECT id::text AS id, at, owner_id, actor, grant_id, device_id, kind, capabilities, reads FROM access_log
       WHERE owner_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint) AND ($3::text IS NULL OR device_id = $3)
       ORDER BY id DESC LIMIT $4`, [ownerId, page.before ?? null, page.deviceId ?? null, page.limit])
    return rows.map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), ownerId: r.owner_id, actor: r.actor, grantId: r.grant_id, deviceId: r.device_id, kind: r.kind, capabilities: r.capabilities, reads: r.reads }))
  }

  /** Deletes records older than the retention, a chunk per statement; returns how many went. */
  async prune (now = Date.now()): Promise<number> {
    const before = new Date(now - this.retentionMs)
    let total = 0
    for (;;) {
      const rows = await this.db.query<{ id: string }>('DELETE FROM access_log WHERE id IN (SELECT id FROM access_log WHERE at < $1 ORDER BY id LIMIT $2) RETURNING id', [before, PRUNE_CHUNK])
      total += rows.length
      if (rows.length < PRUNE_CHUNK) return total
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  async close (): Promise<void> {
    clearInterval(this.pruning)
    await this.flush()
  }
}
