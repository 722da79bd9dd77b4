import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SqlClient } from '@trellis/hub'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { CommandLog, type CommandRecord } from '../../hub/src/commands/command-log.js'
import { eventually } from '../support/wait.js'

// A database of its own on the run's PostgreSQL.
let database: TestDatabase
let db: SqlClient
beforeAll(async () => { database = await freshDatabase(); db = database.open() })
afterAll(async () => { await db?.close(); await database?.drop() })

const record = (id: string, over: Partial<CommandRecord> = {}): CommandRecord => ({
  id, deviceId: 'dev-a', ownerId: 'ow-a', origin: 'api', request: { set: { power: true } }, status: 'pending', error: null, state: null,
  createdAt: Date.now(), sentAt: Date.now(), ackedAt: null, queuedUntil: null, ...over,
})

const stored = async (id: string) => (await db.query<{ status: string }>('SELECT status FROM commands WHERE id = $1', [id]))[0]?.status

describe('the command log writes behind', () => {
  it('answers reads from records not written yet, and writes the latest state of each within its interval', async () => {
    const log = await CommandLog.open(db, { flushIntervalMs: 60_000 })
    const c = record('cmd-behind')
    await log.insert(c)
    expect(await stored('cmd-behind')).toBeUndefined()
    c.status = 'ok'
    c.ackedAt = Date.now()
    await log.update(c)
    expect((await log.get('dev-a', 'cmd-behind'))?.status).toBe('ok')
    expect(await log.get('dev-b', 'cmd-behind')).toBeNull()
    // recent() and the other queries write first, so they see everything.
    expect((await log.recent('dev-a', 10)).map((r) => [r.id, r.status])).toEqual([['cmd-behind', 'ok']])
    expect(await stored('cmd-behind')).toBe('ok')
  })

  it('writes on its timer without being asked', async () => {
    const log = await CommandLog.open(db, { flushIntervalMs: 10 })
    await log.insert(record('cmd-timer'))
    expect(await eventually(() => stored('cmd-timer'), (s) => s !== undefined, { what: 'the record written', timeoutMs: 5000 })).toBe('pending')
  })

  it('writes a command queued for an offline device before insert resolves, so it outlives a restart', async () => {
    const log = await CommandLog.open(db, { flushIntervalMs: 60_000 })
    await log.insert(record('cmd-queued', { sentAt: null, queuedUntil: Date.now() + 60_000 }))
    expect(await stored('cmd-queued')).toBe('pending')
    const afterRestart = await CommandLog.open(db)
    expect((await afterRestart.queued()).map((r) => r.id)).toContain('cmd-queued')
  })

  it('writes many commands in one statement', async () => {
    const log = await CommandLog.open(db, { flushIntervalMs: 60_000 })
    for (let i = 0; i < 250; i++) await log.insert(record(`cmd-many-${i}`, { deviceId: 'dev-many' }))
    await log.flush()
    const [{ count }] = await db.query<{ count: number }>("SELECT count(*)::int AS count FROM commands WHERE device_id = 'dev-many'")
    expect(count).toBe(250)
  })
})
