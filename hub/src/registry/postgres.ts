import pg from 'pg'
import type { Logger } from 'pino'
import type { SqlClient, SqlSession } from './sql.js'

export interface PostgresOptions {
  /** Most connections this process opens. Default 5: the registry is off the ingest path. */
  maxConnections?: number
  /** An idle connection is closed after this many ms (its server process goes with it). Default 10000. */
  idleTimeoutMs?: number
  /** Give up connecting after this many ms. Default 10000. */
  connectTimeoutMs?: number
  /** Where a connection lost while idle is reported (at warn). Default: nowhere. */
  logger?: Logger
}

/**
 * A PostgreSQL database through node-postgres: `connection` is a URL
 * (`postgresql://user:pass@host:5432/db`, or with `?host=/socket/dir`) or a
 * pg client config, such as a managed server's `connection`.
 */
export function openPostgres (connection: string | pg.ClientConfig, opts: PostgresOptions = {}): SqlClient {
  const config = typeof connection === 'string' ? { connectionString: connection } : connection
  const pool = new pg.Pool({
    ...config,
    max: opts.maxConnections ?? 5,
    idleTimeoutMillis: opts.idleTimeoutMs ?? 10_000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
  })
  // A connection the server drops while idle (a restart) is replaced on next use: report it, do not crash on it.
  pool.on('error', (err) => opts.logger?.warn({ err, component: 'registry' }, 'an idle registry connection was lost; a new one is opened on next use'))
  const session = (client: pg.Pool | pg.PoolClient): SqlSession => ({
    async query<T> (text: string, params?: unknown[]) {
      return (await client.query(text, params)).rows as T[]
    },
  })
  return {
    ...session(pool),
    async exec (text: string) { await pool.query(text) },
    async transaction<T> (fn: (tx: SqlSession) => Promise<T>) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const result = await fn(session(client))
        await client.query('COMMIT')
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },
    async close () { await pool.end() },
  } as SqlClient
}
