import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Registry } from '../../hub/src/registry/registry.js'
import type { SqlClient } from '../../hub/src/registry/sql.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'

/** A real in-memory database whose token inserts fail, as a full disk or a lost connection would make them. */
function failingTokenInserts (db: SqlClient): SqlClient {
  const refuse = (text: string) => { if (text.startsWith('INSERT INTO tokens')) throw new Error('disk full') }
  return {
    ...db,
    async query (text, params) { refuse(text); return await db.query(text, params) },
    async transaction (fn) {
      return await db.transaction(async (tx) => await fn({ async query (text, params) { refuse(text); return await tx.query(text, params) } }))
    },
  }
}

describe('registry accounts', () => {
  let database: TestDatabase
  let db: SqlClient
  let registry: Registry
  beforeAll(async () => { database = await freshDatabase(); db = database.open(); registry = await Registry.open(failingTokenInserts(db)) }, 60_000)
  afterAll(async () => { await db?.close(); await database?.drop() })

  it('writes a maker and its first token together, or neither', async () => {
    await expect(registry.createMaker('Acme')).rejects.toThrow('disk full')
    expect(await db.query('SELECT id FROM makers')).toEqual([])
  })

  it('writes an owner and its first token together, or neither', async () => {
    await expect(registry.createOwner('a@example.com', 'correct horse battery')).rejects.toThrow('disk full')
    expect(await db.query('SELECT id FROM owners')).toEqual([])
  })
})
