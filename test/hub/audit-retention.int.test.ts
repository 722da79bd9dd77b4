import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { AuditLog, type SqlClient } from '@trellis/hub'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { Registry } from '../../hub/src/registry/registry.js'

// A database of its own on the run's PostgreSQL.
let database: TestDatabase
let db: SqlClient
let registry: Registry
beforeAll(async () => {
  database = await freshDatabase()
  db = database.open()
  registry = await Registry.open(db)
})
afterAll(async () => { await db?.close(); await database?.drop() })

describe('the audit log keeps its records for a while, not for ever', () => {
  it('deletes the records older than the retention, in chunks, and keeps the rest', async () => {
    const audit = new AuditLog(registry, pino({ level: 'silent' }), { flushIntervalMs: 60_000, retentionMs: 90 * 86_400_000 })
    try {
      for (let i = 0; i < 2500; i++) audit.record({ actor: 'anonymous', action: 'login-failed', detail: `attempt ${i}` })
      await audit.flush()
      // The first 2,200 as if written 100 days ago, one 89 days ago, the rest now.
      await db.query("UPDATE audit_log SET at = now() - interval '100 days' WHERE detail ~ '^attempt ([0-9]|[0-9][0-9]|[0-9][0-9][0-9]|1[0-9][0-9][0-9]|2[01][0-9][0-9])$'")
      await db.query("UPDATE audit_log SET at = now() - interval '89 days' WHERE detail = 'attempt 2200'")

      expect(await audit.prune()).toBe(2200)
      const left = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log")
      expect(left[0].n).toBe(300)
      const newest = await registry.readAudit({ limit: 1 })
      expect(newest[0].detail).toBe('attempt 2499')
      expect(await audit.prune()).toBe(0)
    } finally {
      await audit.close()
    }
  })
})
