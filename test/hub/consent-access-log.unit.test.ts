import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import type { SqlClient } from '../../hub/src/registry/sql.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { AccessLog, type AccessEntry } from '../../hub/src/consent/access-log.js'

// The owners' access log: reads under grants cost a map update; a batch is one insert.

let db: TestDatabase
let sql: SqlClient
beforeAll(async () => { db = await freshDatabase(); sql = db.open() }, 60_000)
afterAll(async () => { await sql?.close(); await db?.drop() })

const log = pino({ level: 'silent' })
const entry = (over: Partial<AccessEntry> = {}): AccessEntry => ({ ownerId: 'ow-1', actor: 'maker:mk-1', grantId: 'grt-1', deviceId: 'dev-1', kind: 'state', capabilities: ['temperature'], ...over })

/** Counts the statements that reach the database. */
function counting (db: SqlClient): SqlClient & { inserts: number } {
  const wrapped = {
    inserts: 0,
    query: async <T>(text: string, params?: unknown[]) => {
      if (text.includes('INSERT INTO access_log')) wrapped.inserts++
      return await db.query<T>(text, params)
    },
    exec: (text: string) => db.exec(text),
    transaction: db.transaction.bind(db),
    close: async () => {},
  }
  return wrapped as SqlClient & { inserts: number }
}

describe('access log', () => {
  it('folds the same read repeated within a batch into one record with its count, and writes a batch in one insert', async () => {
    const db = counting(sql)
    const access = await AccessLog.open(db, log, { flushIntervalMs: 60_000 })
    for (let i = 0; i < 1000; i++) access.record(entry({ ownerId: 'ow-fold' }))
    access.record(entry({ ownerId: 'ow-fold', kind: 'history' }))
    expect(db.inserts).toBe(0)
    const records = await access.read('ow-fold', { limit: 10 })
    expect(db.inserts).toBe(1)
    expect(records.map((r) => [r.kind, r.reads]).sort()).toEqual([['history', 1], ['state', 1000]])
    expect(records[0]).toMatchObject({ actor: 'maker:mk-1', grantId: 'grt-1', deviceId: 'dev-1', capabilities: ['temperature'] })
    await access.close()
  })

  it('writes what is pending on close, and shows an owner only its own records', async () => {
    const access = await AccessLog.open(sql, log, { flushIntervalMs: 60_000 })
    access.record(entry({ ownerId: 'ow-close-a' }))
    access.record(entry({ ownerId: 'ow-close-b' }))
    await access.close()
    const reader = await AccessLog.open(sql, log)
    expect((await reader.read('ow-close-a', { limit: 10 })).map((r) => r.ownerId)).toEqual(['ow-close-a'])
    await reader.close()
  })

  it('holds at most maxPending distinct reads, counting the rest as dropped', async () => {
    const access = await AccessLog.open(sql, log, { flushIntervalMs: 60_000, maxPending: 3 })
    for (let i = 0; i < 5; i++) access.record(entry({ ownerId: 'ow-bound', deviceId: `dev-${i}` }))
    expect(access.dropped).toBe(2)
    expect(await access.read('ow-bound', { limit: 10 })).toHaveLength(3)
    await access.close()
  })

  it('prunes records older than the retention', async () => {
    const access = await AccessLog.open(sql, log, { flushIntervalMs: 60_000, retentionMs: 86_400_000 })
    access.record(entry({ ownerId: 'ow-prune' }), Date.now() - 2 * 86_400_000)
    access.record(entry({ ownerId: 'ow-prune', kind: 'history' }))
    await access.flush()
    expect(await access.prune()).toBeGreaterThanOrEqual(1)
    expect((await access.read('ow-prune', { limit: 10 })).map((r) => r.kind)).toEqual(['history'])
    await access.close()
  })
})
