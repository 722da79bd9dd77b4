import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'

/** The little the registry needs of a SQL database; PGlite and PostgreSQL both provide it. */
export interface SqlClient {
  query<T = Record<string, unknown>> (text: string, params?: unknown[]): Promise<T[]>
  exec (text: string): Promise<void>
  transaction<T> (fn: (tx: Pick<SqlClient, 'query'>) => Promise<T>): Promise<T>
  close (): Promise<void>
}

/** PGlite (Postgres compiled to WebAssembly) in-process; `dataDir` undefined keeps it in memory. */
export async function openPglite (dataDir?: string): Promise<SqlClient> {
  if (dataDir) await mkdir(dataDir, { recursive: true })
  const db = await PGlite.create(dataDir)
  return {
    async query<T> (text: string, params?: unknown[]) {
      return (await db.query<T>(text, params)).rows
    },
    async exec (text: string) { await db.exec(text) },
    async transaction<T> (fn: (tx: Pick<SqlClient, 'query'>) => Promise<T>) {
      return await db.transaction(async (tx) => await fn({
        async query<R> (text: string, params?: unknown[]) { return (await tx.query<R>(text, params)).rows },
      }))
    },
    async close () { await db.close() },
  }
}

export const schema = `
CREATE TABLE IF NOT EXISTS makers (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS owners (
  id text PRIMARY KEY,
  email text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tokens (
  hash text PRIMARY KEY,
  id text NOT NULL UNIQUE,
  scope text NOT NULL CHECK (scope IN ('maker', 'owner', 'admin')),
  subject text NOT NULL,
  label text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz;
CREATE INDEX IF NOT EXISTS tokens_subject ON tokens (subject);
CREATE TABLE IF NOT EXISTS models (
  id text PRIMARY KEY,
  maker_id text NOT NULL REFERENCES makers (id),
  name text NOT NULL,
  capabilities jsonb NOT NULL,
  mapping jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (maker_id, name)
);
CREATE TABLE IF NOT EXISTS devices (
  id text PRIMARY KEY,
  model_id text NOT NULL REFERENCES models (id),
  maker_id text NOT NULL REFERENCES makers (id),
  secret_hash text NOT NULL,
  claim_hash text UNIQUE,
  owner_id text REFERENCES owners (id),
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  claimed_at timestamptz,
  released_at timestamptz
);
ALTER TABLE devices ADD COLUMN IF NOT EXISTS released_at timestamptz;
ALTER TABLE models ADD COLUMN IF NOT EXISTS heartbeat_seconds integer;
CREATE INDEX IF NOT EXISTS devices_owner ON devices (owner_id);
CREATE INDEX IF NOT EXISTS devices_maker ON devices (maker_id);
CREATE TABLE IF NOT EXISTS audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  device_id text,
  address text,
  detail text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_device ON audit_log (device_id, id);
CREATE TABLE IF NOT EXISTS device_state (
  device_id text PRIMARY KEY REFERENCES devices (id),
  online boolean NOT NULL DEFAULT false,
  last_seen timestamptz,
  state jsonb NOT NULL DEFAULT '{}'
);
`
