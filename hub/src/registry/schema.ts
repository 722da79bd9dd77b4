import type { Migration } from './migrate.js'

export const registrySchema = `
CREATE TABLE makers (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE owners (
  id text PRIMARY KEY,
  email text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tokens (
  hash text PRIMARY KEY,
  id text NOT NULL UNIQUE,
  scope text NOT NULL CHECK (scope IN ('maker', 'owner', 'admin')),
  subject text NOT NULL,
  label text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE TABLE models (
  id text PRIMARY KEY,
  maker_id text NOT NULL REFERENCES makers (id),
  name text NOT NULL,
  capabilities jsonb NOT NULL,
  mapping jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_seconds integer,
  UNIQUE (maker_id, name)
);
CREATE TABLE devices (
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
CREATE INDEX devices_owner ON devices (owner_id);
CREATE INDEX devices_maker ON devices (maker_id);
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  device_id text,
  address text,
  detail text NOT NULL
);
CREATE INDEX audit_log_device ON audit_log (device_id, id);
CREATE TABLE device_state (
  device_id text PRIMARY KEY REFERENCES devices (id),
  online boolean NOT NULL DEFAULT false,
  last_seen timestamptz,
  state jsonb NOT NULL DEFAULT '{}'
);
`

/** The registry's own tables (the command log and schedules keep theirs with their stores). */
export const registryMigrations: Migration[] = [
  { version: 1, name: 'makers, owners, tokens, models, devices, audit log, device state', sql: registrySchema },
  { version: 2, name: 'tokens: an expiry', sql: 'ALTER TABLE tokens ADD COLUMN expires_at timestamptz' },
  { version: 3, name: 'devices: the gateway a child is provisioned under', sql: `
      ALTER TABLE devices ADD COLUMN gateway_id text REFERENCES devices (id);
      CREATE INDEX devices_gateway ON devices (gateway_id) WHERE gateway_id IS NOT NULL;` },
  // Nullable with no default: existing devices keep reading local times in their model's zone.
  { version: 4, name: 'devices: their own time zone', sql: 'ALTER TABLE devices ADD COLUMN time_zone text CHECK (char_length(time_zone) BETWEEN 1 AND 64)' },
]
