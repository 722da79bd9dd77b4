import type { SqlClient } from './sql.js'
import { iso, type AuditAction, type AuditEntry, type AuditRecord } from './records.js'

/** The security audit log's rows: appended in batches, read newest first, pruned by age. */
export class AuditRecords {
  constructor (private readonly db: SqlClient) {}

  async appendAudit (entries: AuditEntry[]): Promise<void> {
    if (entries.length === 0) return
    await this.db.query(
      `INSERT INTO audit_log (actor, action, device_id, address, detail)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])`,
      [entries.map((e) => e.actor), entries.map((e) => e.action), entries.map((e) => e.deviceId ?? null),
        entries.map((e) => e.address ?? null), entries.map((e) => e.detail)])
  }

  /** Deletes the oldest audit records written before `before`, at most `limit`; returns how many went. */
  async pruneAudit (before: Date, limit: number): Promise<number> {
    const rows = await this.db.query<{ id: string }>(
      'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2) RETURNING id', [before, limit])
    return rows.length
  }

  /** Audit records newest first; with `makerId`, only those about that maker's devices. */
  async readAudit (filter: { makerId?: string, deviceId?: string, before?: string, limit: number }): Promise<AuditRecord[]> {
    const rows = await this.db.query<{ id: string, at: Date, actor: string, action: AuditAction, device_id: string | null, address: string | null, detail: string }>(
      `SELECT a.id::text AS id, a.at, a.actor, a.action, a.device_id, a.address, a.detail FROM audit_log a
       ${filter.makerId ? 'JOIN devices d ON d.id = a.device_id AND d.maker_id = $1' : 'WHERE $1::text IS NULL'}
       ${filter.makerId ? 'WHERE' : 'AND'} ($2::text IS NULL OR a.device_id = $2) AND ($3::bigint IS NULL OR a.id < $3::bigint)
       ORDER BY a.id DESC LIMIT $4`,
      [filter.makerId ?? null, filter.deviceId ?? null, filter.before ?? null, filter.limit])
    return rows.map((r) => ({ id: r.id, at: iso(r.at)!, actor: r.actor, action: r.action, deviceId: r.device_id, address: r.address, detail: r.detail }))
  }
}
