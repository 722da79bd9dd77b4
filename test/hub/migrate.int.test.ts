import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildHub, migrate, type Hub, type Migration, type SqlClient } from '@trellis/hub'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { testLogger } from '../support/stack.js'

let influx: TestInflux
const databases: TestDatabase[] = []
const clients: SqlClient[] = []
beforeAll(async () => { influx = await startTestInflux() })
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  for (const d of databases) await d.drop()
  await influx?.dispose()
})

async function database (): Promise<TestDatabase> {
  const d = await freshDatabase()
  databases.push(d)
  return d
}

function open (d: TestDatabase): SqlClient {
  const c = d.open()
  clients.push(c)
  return c
}

describe('migrations', () => {
  it('run once each when several hubs start together on one fresh database', async () => {
    const d = await database()
    const hubs: Hub[] = []
    try {
      hubs.push(...await Promise.all(Array.from({ length: 4 }, () => buildHub({ influxUrl: influx.url, sql: d.open(), logger: testLogger() }))))
      const rows = await open(d).query<{ component: string, version: number, n: number }>(
        'SELECT component, version, count(*)::int AS n FROM schema_migrations GROUP BY component, version ORDER BY component, version')
      expect(rows.map((r) => `${r.component} ${r.version}`)).toEqual(['access-log 1', 'automations 1', 'commands 1', 'consent 1', 'consent 2', 'registry 1', 'registry 2', 'registry 3', 'registry 4', 'schedules 1'])
      expect(rows.every((r) => r.n === 1)).toBe(true)
      // Every hub serves from the one schema.
      expect(await Promise.all(hubs.map(async (h, i) => (await h.registry.createMaker(`maker ${i}`)).maker.id))).toHaveLength(4)
    } finally {
      await Promise.all(hubs.map((h) => h.close()))
    }
  })

  it('apply a step exactly once when many nodes migrate at the same moment', async () => {
    const d = await database()
    const steps: Migration[] = [
      { version: 1, name: 'a tally', sql: 'CREATE TABLE tally (at timestamptz NOT NULL DEFAULT now())' },
      { version: 2, name: 'count this run', sql: 'INSERT INTO tally DEFAULT VALUES' },
    ]
    const applied = await Promise.all(Array.from({ length: 6 }, () => migrate(open(d), 'tally', steps)))
    expect(applied.flat().sort()).toEqual([1, 2])
    expect(await open(d).query('SELECT * FROM tally')).toHaveLength(1)
  })

  it('express a rename with its backfill, applied whole, and roll a failing step back entirely', async () => {
    const d = await database()
    const db = open(d)
    const v1: Migration = { version: 1, name: 'gadgets', sql: 'CREATE TABLE gadgets (id text PRIMARY KEY, title text NOT NULL, created_at timestamptz NOT NULL)' }
    await migrate(db, 'gadgets', [v1])
    await db.query("INSERT INTO gadgets VALUES ('g1', 'Kettle', '2026-01-01T00:00:00Z'), ('g2', 'Lamp', '2026-02-01T00:00:00Z')")
    const v2: Migration = {
      version: 2,
      name: 'gadgets: title becomes label, with a slug backfilled from it',
      sql: `ALTER TABLE gadgets RENAME COLUMN title TO label;
            ALTER TABLE gadgets ADD COLUMN slug text;
            UPDATE gadgets SET slug = lower(label);
            ALTER TABLE gadgets ALTER COLUMN slug SET NOT NULL;`,
    }
    expect(await migrate(db, 'gadgets', [v1, v2])).toEqual([2])
    expect(await db.query('SELECT id, label, slug FROM gadgets ORDER BY id')).toEqual([
      { id: 'g1', label: 'Kettle', slug: 'kettle' },
      { id: 'g2', label: 'Lamp', slug: 'lamp' },
    ])
    const v3: Migration = {
      version: 3,
      name: 'a step that fails half-way',
      async sql (tx) {
        await tx.query('ALTER TABLE gadgets ADD COLUMN colour text')
        await tx.query('UPDATE gadgets SET colour = $1::integer::text', ['not a number'])
      },
    }
    await expect(migrate(db, 'gadgets', [v1, v2, v3])).rejects.toThrow(/migration gadgets 3 \(a step that fails half-way\) failed/)
    const columns = await db.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_name = 'gadgets' ORDER BY ordinal_position")
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'label', 'created_at', 'slug'])
    expect(await db.query<{ version: number }>("SELECT version FROM schema_migrations WHERE component = 'gadgets' ORDER BY version")).toEqual([{ version: 1 }, { version: 2 }])
  })
})
