import type { SqlClient } from '../registry/sql.js'
import { migrate } from '../registry/migrate.js'
import { randomBytes } from 'node:crypto'

/** Who holds a grant: a maker, or a third-party app an owner registered. */
export type GranteeKind = 'maker' | 'app'
/** Raw readings, or hourly aggregates only. */
export type Resolution = 'raw' | 'hourly'

export interface Grant {
  id: string
  ownerId: string
  grantee: { kind: GranteeKind, id: string }
  devices: string[]
  capabilities: string[]
  resolution: Resolution
  /** epoch ms */
  createdAt: number
  expiresAt: number
  revokedAt: number | null
}

/** An API client an owner registered; it reads through its own token, under the owner's grants. */
export interface App { id: string, ownerId: string, name: string, createdAt: number, revokedAt: number | null }

const schema = `
CREATE TABLE apps (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX apps_owner ON apps (owner_id);
CREATE TABLE grants (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  grantee_kind text NOT NULL CHECK (grantee_kind IN ('maker', 'app')),
  grantee_id text NOT NULL,
  devices text[] NOT NULL,
  capabilities text[] NOT NULL,
  resolution text NOT NULL CHECK (resolution IN ('raw', 'hourly')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX grants_owner ON grants (owner_id, created_at DESC);
CREATE INDEX grants_grantee ON grants (grantee_kind, grantee_id);
`

// An app holds a token of its own, in the registry's table: its scope is allowed there.
const appTokens = `
ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_scope_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_scope_check CHECK (scope IN ('maker', 'owner', 'admin', 'app'));
`

interface GrantRow {
  id: string, owner_id: string, grantee_kind: GranteeKind, grantee_id: string, devices: string[], capabilities: string[]
  resolution: Resolution, created_at: Date, expires_at: Date, revoked_at: Date | null
}
interface AppRow { id: string, owner_id: string, name: string, created_at: Date, revoked_at: Date | null }

const ms = (d: Date | null): number | null => d === null ? null : new Date(d).getTime()
const toGrant = (r: GrantRow): Grant => ({
  id: r.id,
  ownerId: r.owner_id,
  grantee: { kind: r.grantee_kind, id: r.grantee_id },
  devices: r.devices,
  capabilities: r.capabilities,
  resolution: r.resolution,
  createdAt: ms(r.created_at)!,
  expiresAt: ms(r.expires_at)!,
  revokedAt: ms(r.revoked_at),
})
const toApp = (r: AppRow): App => ({ id: r.id, ownerId: r.owner_id, name: r.name, createdAt: ms(r.created_at)!, revokedAt: ms(r.revoked_at) })

const newConsentId = (prefix: 'grt' | 'app') => `${prefix}-${randomBytes(8).toString('hex')}`

/**
 * Grants and apps in SQL, with the live grants of each grantee cached for the
 * read path: a maker's device view asks the cache, not the database, and any
 * change to a grant empties it.
 */
export class GrantStore {
  private readonly live = new Map<string, { loadedAt: number, grants: Promise<Grant[]> }>()

  /**
   * `cacheMs`: how long a grantee's grants are trusted before they are read
   * again, so that a change made through another hub of a cluster is seen
   * within it; a change through this one is seen at once. Default 5000.
   */
  private constructor (private readonly db: SqlClient, private readonly cacheMs: number) {}

  static async open (db: SqlClient, opts: { cacheMs?: number } = {}): Promise<GrantStore> {
    await migrate(db, 'consent', [
      { version: 1, name: 'apps and grants', sql: schema },
      { version: 2, name: 'tokens: the app scope', sql: appTokens },
    ])
    return new GrantStore(db, opts.cacheMs ?? 5000)
  }

  /** The grantee's unrevoked grants, from the cache; expiry is the caller's to check against its clock. */
  async heldBy (kind: GranteeKind, id: string): Promise<Grant[]> {
    const key = `${kind}:${id}`
    const now = Date.now()
    let hit = this.live.get(key)
    if (!hit || now - hit.loadedAt > this.cacheMs) {
      const grants = this.db.query<GrantRow>('SELECT * FROM grants WHERE grantee_kind = $1 AND grantee_id = $2 AND revoked_at IS NULL AND expires_at > now()', [kind, id])
        .then((rows) => rows.map(toGrant))
      grants.catch(() => this.live.delete(key))
      // Bounded: past 10,000 grantees the cache starts over.
      if (this.live.size >= 10_000) this.live.clear()
      hit = { loadedAt: now, grants }
      this.live.set(key, hit)
    }
    return await hit.grants
  }

  /** Every grant the grantee holds or held (revoked and expired included), newest first. */
  async listForGrantee (kind: GranteeKind, id: string, limit = 200): Promise<Grant[]> {
    const rows = await this.db.query<GrantRow>('SELECT * FROM grants WHERE grantee_kind = $1 AND grantee_id = $2 ORDER BY created_at DESC, id LIMIT $3', [kind, id, limit])
    return rows.map(toGrant)
  }

  async listForOwner (ownerId: string, limit = 200): Promise<Grant[]> {
    const rows = await this.db.query<GrantRow>('SELECT * FROM grants WHERE owner_id = $1 ORDER BY created_at DESC, id LIMIT $2', [ownerId, limit])
    return rows.map(toGrant)
  }

  async get (id: string): Promise<Grant | null> {
    const rows = await this.db.query<GrantRow>('SELECT * FROM grants WHERE id = $1', [id])
    return rows[0] ? toGrant(rows[0]) : null
  }

  async liveCount (ownerId: string): Promise<number> {
    const [{ n }] = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM grants WHERE owner_id = $1 AND revoked_at IS NULL AND expires_at > now()', [ownerId])
    return n
  }

  async create (g: Omit<Grant, 'id' | 'createdAt' | 'revokedAt'>): Promise<Grant> {
    const rows = await this.db.query<GrantRow>(
      `INSERT INTO grants (id, owner_id, grantee_kind, grantee_id, devices, capabilities, resolution, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [newConsentId('grt'), g.ownerId, g.grantee.kind, g.grantee.id, g.devices, g.capabilities, g.resolution, new Date(g.expiresAt)])
    this.live.delete(`${g.grantee.kind}:${g.grantee.id}`)
    return toGrant(rows[0])
  }

  /** Revokes one of the owner's grants at once; null when the owner has no such grant. */
  async revoke (ownerId: string, id: string): Promise<Grant | null> {
    const rows = await this.db.query<GrantRow>(
      'UPDATE grants SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND owner_id = $2 RETURNING *', [id, ownerId])
    if (!rows[0]) return null
    this.live.delete(`${rows[0].grantee_kind}:${rows[0].grantee_id}`)
    return toGrant(rows[0])
  }

  async createApp (ownerId: string, name: string): Promise<App> {
    const rows = await this.db.query<AppRow>('INSERT INTO apps (id, owner_id, name) VALUES ($1, $2, $3) RETURNING *', [newConsentId('app'), ownerId, name])
    return toApp(rows[0])
  }

  async getApp (id: string): Promise<App | null> {
    const rows = await this.db.query<AppRow>('SELECT * FROM apps WHERE id = $1', [id])
    return rows[0] ? toApp(rows[0]) : null
  }

  async listApps (ownerId: string): Promise<App[]> {
    const rows = await this.db.query<AppRow>('SELECT * FROM apps WHERE owner_id = $1 ORDER BY created_at DESC, id LIMIT 200', [ownerId])
    return rows.map(toApp)
  }

  async liveAppCount (ownerId: string): Promise<number> {
    const [{ n }] = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM apps WHERE owner_id = $1 AND revoked_at IS NULL', [ownerId])
    return n
  }

  /** Removes an app: its grants are revoked with it. Null when the owner has no such live app. */
  async revokeApp (ownerId: string, id: string): Promise<App | null> {
    const rows = await this.db.query<AppRow>('UPDATE apps SET revoked_at = now() WHERE id = $1 AND owner_id = $2 AND revoked_at IS NULL RETURNING *', [id, ownerId])
    if (!rows[0]) return null
    await this.db.query("UPDATE grants SET revoked_at = now() WHERE grantee_kind = 'app' AND grantee_id = $1 AND revoked_at IS NULL", [id])
    this.live.delete(`app:${id}`)
    return toApp(rows[0])
  }
}
