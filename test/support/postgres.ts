/**
 * The tests' PostgreSQL: one managed server for the whole run (started by
 * `globalSetup` below, in a temporary folder, its socket passed on in the
 * environment), and a database of its own for each hub or test that asks.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { openPostgres, startPostgres, type PostgresConnection, type SqlClient } from '@trellis/hub'

const ENV = 'TRELLIS_TEST_POSTGRES'

/** vitest globalSetup: starts the run's server; the returned function stops it and removes its folder. */
export default async function setup (): Promise<() => Promise<void>> {
  // An empty folder for initdb; as root, it is handed to the postgres user the server runs as.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-test-pg-'))
  const server = await startPostgres({
    dataDir,
    // Test data need not survive a crash; every file's hubs connect at once.
    durable: false,
    maxConnections: 200,
    sharedBuffers: '32MB',
    // Also when the run is interrupted: the watchdog removes the folder once the server is down.
    ephemeral: true,
    supervise: false,
  })
  process.env[ENV] = JSON.stringify(server.connection)
  return async () => { await server.stop() }
}

function serverConnection (): PostgresConnection {
  const raw = process.env[ENV]
  if (!raw) throw new Error(`${ENV} is not set: the integration tests' globalSetup (test/support/postgres.ts) starts the test PostgreSQL`)
  return JSON.parse(raw) as PostgresConnection
}

async function admin<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...serverConnection(), database: 'postgres' })
  client.on('error', () => {})
  await client.connect()
  try { return await fn(client) } finally { await client.end() }
}

export interface TestDatabase {
  readonly name: string
  /** A `DATABASE_URL` for it. */
  readonly url: string
  /** A new client (pool) on it; the caller closes it. */
  open (): SqlClient
  /** Drops it, ending any session still open on it. */
  drop (): Promise<void>
}

function testDatabase (name: string): TestDatabase {
  const c = serverConnection()
  return {
    name,
    url: `postgresql://${c.user}@${encodeURIComponent(c.host)}:${c.port}/${name}`,
    open: () => openPostgres({ ...c, database: name }, { maxConnections: 4 }),
    drop: () => admin(async (client) => { await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }),
  }
}

/** An empty database of its own, from template0. */
export async function freshDatabase (): Promise<TestDatabase> {
  const name = `t_${randomBytes(8).toString('hex')}`
  await admin(async (client) => { await client.query(`CREATE DATABASE ${name} TEMPLATE template0`) })
  return testDatabase(name)
}

/**
 * The database of a hub's data folder, made on first use: a hub restarted on
 * the same folder finds its registry again. Dropped with the run's server.
 */
export async function databaseForDir (dataDir: string): Promise<TestDatabase> {
  const name = `d_${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 24)}`
  await admin(async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (!rowCount) await client.query(`CREATE DATABASE ${name} TEMPLATE template0`)
  })
  return testDatabase(name)
}
