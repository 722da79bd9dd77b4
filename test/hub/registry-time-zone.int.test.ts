import { afterAll, describe, expect, it } from 'vitest'
import { migrate, type SqlClient } from '@trellis/hub'
import { Registry } from '../../hub/src/registry/registry.js'
import { registryMigrations } from '../../hub/src/registry/schema.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'

// Registry migration 4 gives devices their own time zone: a registry of an older hub, with
// devices in it, is brought up to it in place, and its devices keep reading in their model's zone.

const databases: TestDatabase[] = []
const clients: SqlClient[] = []
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  for (const d of databases) await d.drop()
})

describe('registry migration 4: devices\' time zones', () => {
  it('adds the zone to a registry that holds devices, each without one, and then keeps what is set', async () => {
    const d = await freshDatabase()
    databases.push(d)
    const db = d.open()
    clients.push(db)
    // The registry as the hub before this step left it, with a device in it.
    expect(await migrate(db, 'registry', registryMigrations.filter((m) => m.version <= 3))).toEqual([1, 2, 3])
    await db.query("INSERT INTO makers (id, name) VALUES ('mk_old', 'Old Maker')")
    await db.query(`INSERT INTO models (id, maker_id, name, capabilities) VALUES ('md_old', 'mk_old', 'old-1', '["temperature"]')`)
    await db.query("INSERT INTO devices (id, model_id, maker_id, secret_hash) VALUES ('dev_old', 'md_old', 'mk_old', 'x')")

    const registry = await Registry.open(db)
    expect((await registry.getDevice('dev_old'))?.timeZone).toBeNull()
    expect((await registry.setDeviceTimeZone('dev_old', 'Asia/Tokyo', null))?.timeZone).toBe('Asia/Tokyo')
    // A maker's change (no owner expected) does not overtake a claim.
    await db.query("INSERT INTO owners (id, email, password_hash) VALUES ('ow_1', 'o@example.com', 'x')")
    await db.query("UPDATE devices SET owner_id = 'ow_1' WHERE id = 'dev_old'")
    expect(await registry.setDeviceTimeZone('dev_old', 'Europe/Berlin', null)).toBeNull()
    expect((await registry.setDeviceTimeZone('dev_old', 'Europe/Berlin', 'ow_1'))?.timeZone).toBe('Europe/Berlin')
    const [{ count }] = await db.query<{ count: number }>("SELECT count(*)::int AS count FROM schema_migrations WHERE component = 'registry'")
    expect(count).toBe(registryMigrations.length)
  })
})
