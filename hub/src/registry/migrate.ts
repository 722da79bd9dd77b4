import type { SqlClient, SqlSession } from './sql.js'

/**
 * One step of a store's schema. A step is never edited once released: a
 * change is a new step with the next version. Steps run in one transaction
 * each, so a rename with its backfill lands whole or not at all:
 *
 *   { version: 2, name: 'devices: label from name', sql: `
 *       ALTER TABLE devices RENAME COLUMN name TO label;
 *       ALTER TABLE devices ADD COLUMN label_set_at timestamptz;
 *       UPDATE devices SET label_set_at = created_at WHERE label IS NOT NULL;` }
 *
 * A backfill too large for one statement can be a function of the session.
 */
export interface Migration {
  /** 1, 2, 3…: the order steps run in, per component. */
  version: number
  /** What the step does, kept in `schema_migrations` for whoever reads the database. */
  name: string
  sql: string | ((tx: SqlSession) => Promise<void>)
}

/**
 * The advisory lock every node takes before migrating: nodes that start
 * together wait in turn, and each finds the steps the first one applied.
 * ('trellis' as an integer.)
 */
export const MIGRATION_LOCK = 0x7472656c6c6973

/**
 * Applies the steps of `component` that the database has not seen yet, in
 * version order, each exactly once even when several nodes migrate the same
 * database at once. Resolves with the versions this call applied.
 */
export async function migrate (db: SqlClient, component: string, migrations: readonly Migration[]): Promise<number[]> {
  const steps = [...migrations].sort((a, b) => a.version - b.version)
  steps.forEach((step, i) => {
    if (!Number.isInteger(step.version) || step.version < 1 || (i > 0 && step.version === steps[i - 1].version)) {
      throw new Error(`migrations of ${component}: version ${step.version} (${step.name}) must be a whole number from 1, used once`)
    }
  })
  const applied: number[] = []
  for (const step of steps) {
    // One transaction per step: the lock is held only while a step runs, and is let go on commit or rollback.
    const ran = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        component text NOT NULL,
        version integer NOT NULL,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (component, version)
      )`)
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE component = $1 AND version = $2', [component, step.version])
      if (done.length > 0) return false
      if (typeof step.sql === 'string') await tx.query(step.sql)
      else await step.sql(tx)
      await tx.query('INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)', [component, step.version, step.name])
      return true
    }).catch((err: Error) => {
      throw new Error(`migration ${component} ${step.version} (${step.name}) failed: ${err.message}`, { cause: err })
    })
    if (ran) applied.push(step.version)
  }
  return applied
}
