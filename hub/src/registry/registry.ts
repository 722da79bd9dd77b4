import { EventEmitter } from 'node:events'
import { resolveCapabilities, type CapabilityDeclaration, type ModelCapability } from '@trellis/device-sdk'
import { registryMigrations, type SqlClient } from './sql.js'
import { migrate } from './migrate.js'
import { hashPassword, newClaimCode, newDeviceSecret, newId, newToken, normalizeClaimCode, sha256Hex, verifyPassword } from './secrets.js'

export type Scope = 'maker' | 'owner' | 'admin'

export interface Maker { id: string, name: string, createdAt: string }
export interface Owner { id: string, email: string, createdAt: string }
export interface TokenGrant { tokenId: string, scope: Scope, subject: string }

export interface Model {
  id: string
  makerId: string
  name: string
  /** As declared. */
  capabilities: CapabilityDeclaration[]
  /** Resolved against the catalogue. */
  resolved: ModelCapability[]
  /** The payload mapping; null for canonical (SDK) models. */
  mapping: unknown | null
  /** How long a device of this model may stay silent before it counts as offline; null for the hub's default. */
  heartbeatSeconds: number | null
  createdAt: string
  updatedAt: string
}

export interface DeviceRecord {
  id: string
  modelId: string
  makerId: string
  ownerId: string | null
  disabled: boolean
  createdAt: string
  claimedAt: string | null
  /** When its last owner released it: what it reported before is not its next owner's. */
  releasedAt: string | null
}

export interface TokenRecord { id: string, scope: Scope, label: string | null, createdAt: string, revokedAt: string | null }

/** One security-relevant event: who did what, to which device, from where. */
export interface AuditEntry {
  /** `device:{id}`, `owner:{id}`, `maker:{id}`, `admin`, or `anonymous`. */
  actor: string
  action: AuditAction
  deviceId?: string | null
  address?: string | null
  detail: string
}
export interface AuditRecord extends Required<AuditEntry> { id: string, at: string }
export type AuditAction =
  | 'auth-failed' | 'acl-violation' | 'rate-limited' | 'packet-too-large'
  | 'login-failed' | 'device-claimed' | 'claim-failed' | 'device-released'
  | 'secret-rotated' | 'device-disabled' | 'device-enabled' | 'token-revoked'

export interface DeviceCredentials { secretHash: string, disabled: boolean }

export interface ProvisionedDevice { id: string, secret: string, claimCode: string }

export interface StoredState {
  deviceId: string
  online: boolean
  lastSeen: string | null
  state: Record<string, { value: unknown, ts: string }>
}

interface ModelRow { id: string, maker_id: string, name: string, capabilities: CapabilityDeclaration[], mapping: unknown, heartbeat_seconds: number | null, created_at: Date, updated_at: Date }
interface DeviceRow { id: string, model_id: string, maker_id: string, owner_id: string | null, disabled: boolean, created_at: Date, claimed_at: Date | null, released_at: Date | null }

const iso = (d: Date | string | null): string | null => d === null ? null : new Date(d).toISOString()

function toModel (r: ModelRow): Model {
  return {
    id: r.id,
    makerId: r.maker_id,
    name: r.name,
    capabilities: r.capabilities,
    resolved: resolveCapabilities(r.capabilities),
    mapping: r.mapping ?? null,
    heartbeatSeconds: r.heartbeat_seconds ?? null,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  }
}

function toDevice (r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    modelId: r.model_id,
    makerId: r.maker_id,
    ownerId: r.owner_id,
    disabled: r.disabled,
    createdAt: iso(r.created_at)!,
    claimedAt: iso(r.claimed_at),
    releasedAt: iso(r.released_at),
  }
}

export class EmailTakenError extends Error {}
export class ModelNameTakenError extends Error {}

/**
 * Makers, models, devices, owners and tokens, in SQL. Secrets, tokens and
 * claim codes are stored as SHA-256 digests, passwords with scrypt; what is
 * returned in plain text is returned once.
 *
 * Events: `device-changed` (deviceId), `model-changed` (modelId),
 * `credentials-changed` (deviceId: its secret was rotated or it was disabled,
 * so live sessions must close), `token-revoked` (tokenId).
 */
export class Registry extends EventEmitter {
  private constructor (private readonly db: SqlClient) { super() }

  static async open (db: SqlClient): Promise<Registry> {
    await migrate(db, 'registry', registryMigrations)
    return new Registry(db)
  }

  async close (): Promise<void> { await this.db.close() }

  // --- tokens --------------------------------------------------------------

  async issueToken (scope: Scope, subject: string, label?: string): Promise<string> {
    const token = newToken(scope)
    await this.db.query('INSERT INTO tokens (hash, id, scope, subject, label) VALUES ($1, $2, $3, $4, $5)',
      [sha256Hex(token), newId('tok'), scope, subject, label ?? null])
    return token
  }

  async resolveToken (token: string): Promise<TokenGrant | null> {
    const rows = await this.db.query<{ id: string, scope: Scope, subject: string }>(
      'SELECT id, scope, subject FROM tokens WHERE hash = $1 AND revoked_at IS NULL', [sha256Hex(token)])
    const row = rows[0]
    return row ? { tokenId: row.id, scope: row.scope, subject: row.subject } : null
  }

  /** The subject's tokens, newest first; never the tokens themselves. */
  async listTokens (subject: string): Promise<TokenRecord[]> {
    const rows = await this.db.query<{ id: string, scope: Scope, label: string | null, created_at: Date, revoked_at: Date | null }>(
      'SELECT id, scope, label, created_at, revoked_at FROM tokens WHERE subject = $1 ORDER BY created_at DESC, id', [subject])
    return rows.map((r) => ({ id: r.id, scope: r.scope, label: r.label, createdAt: iso(r.created_at)!, revokedAt: iso(r.revoked_at) }))
  }

  /** Revokes a token of `subject` (any subject's when null); false when there is no such live token. */
  async revokeToken (tokenId: string, subject: string | null): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      'UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR subject = $2) RETURNING id', [tokenId, subject])
    if (!rows[0]) return false
    this.emit('token-revoked', tokenId)
    return true
  }

  // --- makers and owners ------------------------------------------------------

  async createMaker (name: string): Promise<{ maker: Maker, token: string }> {
    const id = newId('mk')
    const rows = await this.db.query<{ created_at: Date }>('INSERT INTO makers (id, name) VALUES ($1, $2) RETURNING created_at', [id, name])
    const token = await this.issueToken('maker', id, 'created at sign-up')
    return { maker: { id, name, createdAt: iso(rows[0].created_at)! }, token }
  }

  async getMaker (id: string): Promise<Maker | null> {
    const rows = await this.db.query<{ id: string, name: string, created_at: Date }>('SELECT id, name, created_at FROM makers WHERE id = $1', [id])
    return rows[0] ? { id: rows[0].id, name: rows[0].name, createdAt: iso(rows[0].created_at)! } : null
  }

  async createOwner (email: string, password: string): Promise<{ owner: Owner, token: string }> {
    const id = newId('ow')
    const hash = await hashPassword(password)
    try {
      const rows = await this.db.query<{ created_at: Date }>(
        'INSERT INTO owners (id, email, password_hash) VALUES ($1, $2, $3) RETURNING created_at', [id, email.toLowerCase(), hash])
      const token = await this.issueToken('owner', id, 'created at sign-up')
      return { owner: { id, email: email.toLowerCase(), createdAt: iso(rows[0].created_at)! }, token }
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new EmailTakenError(email)
      throw err
    }
  }

  /** A new session token for the owner with these credentials, or null. */
  async login (email: string, password: string): Promise<{ owner: Owner, token: string } | null> {
    const rows = await this.db.query<{ id: string, email: string, password_hash: string, created_at: Date }>(
      'SELECT id, email, password_hash, created_at FROM owners WHERE email = $1', [email.toLowerCase()])
    const row = rows[0]
    // Hash even for an unknown email, so response time does not reveal which emails exist.
    const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_HASH)
    if (!row || !ok) return null
    const token = await this.issueToken('owner', row.id, 'session')
    return { owner: { id: row.id, email: row.email, createdAt: iso(row.created_at)! }, token }
  }

  // --- models -----------------------------------------------------------------

  async createModel (makerId: string, input: { name: string, capabilities: CapabilityDeclaration[], mapping?: unknown, heartbeatSeconds?: number }): Promise<Model> {
    resolveCapabilities(input.capabilities) // throws a CapabilityDeclarationError naming the problem
    const id = newId('md')
    try {
      const rows = await this.db.query<ModelRow>(
        'INSERT INTO models (id, maker_id, name, capabilities, mapping, heartbeat_seconds) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
        [id, makerId, input.name, JSON.stringify(input.capabilities), input.mapping === undefined ? null : JSON.stringify(input.mapping), input.heartbeatSeconds ?? null])
      return toModel(rows[0])
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new ModelNameTakenError(input.name)
      throw err
    }
  }

  async getModel (id: string): Promise<Model | null> {
    const rows = await this.db.query<ModelRow>('SELECT * FROM models WHERE id = $1', [id])
    return rows[0] ? toModel(rows[0]) : null
  }

  async listModels (makerId: string): Promise<Model[]> {
    const rows = await this.db.query<ModelRow>('SELECT * FROM models WHERE maker_id = $1 ORDER BY created_at, id', [makerId])
    return rows.map(toModel)
  }

  async setMapping (modelId: string, mapping: unknown | null): Promise<Model | null> {
    const rows = await this.db.query<ModelRow>(
      'UPDATE models SET mapping = $2, updated_at = now() WHERE id = $1 RETURNING *', [modelId, mapping === null ? null : JSON.stringify(mapping)])
    if (!rows[0]) return null
    this.emit('model-changed', modelId)
    return toModel(rows[0])
  }

  // --- devices ----------------------------------------------------------------

  async provisionDevices (model: Model, count: number): Promise<ProvisionedDevice[]> {
    const devices: ProvisionedDevice[] = []
    const ids: string[] = []
    const secrets: string[] = []
    const claims: string[] = []
    for (let i = 0; i < count; i++) {
      const d = { id: newId('dev'), secret: newDeviceSecret(), claimCode: newClaimCode() }
      devices.push(d)
      ids.push(d.id)
      secrets.push(sha256Hex(d.secret))
      claims.push(sha256Hex(normalizeClaimCode(d.claimCode)))
    }
    await this.db.query(
      `INSERT INTO devices (id, model_id, maker_id, secret_hash, claim_hash)
       SELECT id, $1, $2, secret_hash, claim_hash FROM unnest($3::text[], $4::text[], $5::text[]) AS t (id, secret_hash, claim_hash)`,
      [model.id, model.makerId, ids, secrets, claims])
    return devices
  }

  async getDevice (id: string): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id])
    return rows[0] ? toDevice(rows[0]) : null
  }

  async deviceCredentials (id: string): Promise<DeviceCredentials | null> {
    const rows = await this.db.query<{ secret_hash: string, disabled: boolean }>('SELECT secret_hash, disabled FROM devices WHERE id = $1', [id])
    return rows[0] ? { secretHash: rows[0].secret_hash, disabled: rows[0].disabled } : null
  }

  async listDevices (filter: { ownerId: string } | { makerId: string }, page: { limit: number, after?: string }): Promise<DeviceRecord[]> {
    const [column, value] = 'ownerId' in filter ? ['owner_id', filter.ownerId] : ['maker_id', filter.makerId]
    const rows = await this.db.query<DeviceRow>(
      `SELECT * FROM devices WHERE ${column} = $1 AND id > $2 ORDER BY id LIMIT $3`, [value, page.after ?? '', page.limit])
    return rows.map(toDevice)
  }

  /** Gives the device with this claim code to the owner; the code is spent. Null when no device has it. */
  async claimDevice (ownerId: string, claimCode: string): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>(
      `UPDATE devices SET owner_id = $1, claim_hash = NULL, claimed_at = now()
       WHERE claim_hash = $2 AND owner_id IS NULL RETURNING *`, [ownerId, sha256Hex(normalizeClaimCode(claimCode))])
    if (!rows[0]) return null
    this.emit('device-changed', rows[0].id)
    return toDevice(rows[0])
  }

  /** A new secret for the device; the old one stops working at once. Null when no such device. */
  async rotateDeviceSecret (deviceId: string): Promise<string | null> {
    const secret = newDeviceSecret()
    const rows = await this.db.query<{ id: string }>('UPDATE devices SET secret_hash = $2 WHERE id = $1 RETURNING id', [deviceId, sha256Hex(secret)])
    if (!rows[0]) return null
    this.emit('device-changed', deviceId)
    this.emit('credentials-changed', deviceId)
    return secret
  }

  async setDeviceDisabled (deviceId: string, disabled: boolean): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>('UPDATE devices SET disabled = $2 WHERE id = $1 RETURNING *', [deviceId, disabled])
    if (!rows[0]) return null
    this.emit('device-changed', deviceId)
    if (disabled) this.emit('credentials-changed', deviceId)
    return toDevice(rows[0])
  }

  /** The owner gives the device up; it gets a fresh claim code (returned once). Null unless the owner has it. */
  async releaseDevice (ownerId: string, deviceId: string): Promise<{ claimCode: string } | null> {
    const claimCode = newClaimCode()
    const rows = await this.db.query<{ id: string }>(
      `UPDATE devices SET owner_id = NULL, claimed_at = NULL, released_at = now(), claim_hash = $3
       WHERE id = $1 AND owner_id = $2 RETURNING id`, [deviceId, ownerId, sha256Hex(normalizeClaimCode(claimCode))])
    if (!rows[0]) return null
    this.emit('device-changed', deviceId)
    return { claimCode }
  }

  // --- audit log ------------------------------------------------------------------

  async appendAudit (entries: AuditEntry[]): Promise<void> {
    if (entries.length === 0) return
    await this.db.query(
      `INSERT INTO audit_log (actor, action, device_id, address, detail)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])`,
      [entries.map((e) => e.actor), entries.map((e) => e.action), entries.map((e) => e.deviceId ?? null),
        entries.map((e) => e.address ?? null), entries.map((e) => e.detail)])
  }

  /** Deletes the oldest audit records written before `before`, at most `limit`; returns how many went. */
  async pruneAudit (before: Date, limit: number): Promise<number> {
    const rows = await this.db.query<{ id: string }>(
      'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2) RETURNING id', [before, limit])
    return rows.length
  }

  /** Audit records newest first; with `makerId`, only those about that maker's devices. */
  async readAudit (filter: { makerId?: string, deviceId?: string, before?: string, limit: number }): Promise<AuditRecord[]> {
    const rows = await this.db.query<{ id: string, at: Date, actor: string, action: AuditAction, device_id: string | null, address: string | null, detail: string }>(
      `SELECT a.id::text AS id, a.at, a.actor, a.action, a.device_id, a.address, a.detail FROM audit_log a
       ${filter.makerId ? 'JOIN devices d ON d.id = a.device_id AND d.maker_id = $1' : 'WHERE $1::text IS NULL'}
       ${filter.makerId ? 'WHERE' : 'AND'} ($2::text IS NULL OR a.device_id = $2) AND ($3::bigint IS NULL OR a.id < $3::bigint)
       ORDER BY a.id DESC LIMIT $4`,
      [filter.makerId ?? null, filter.deviceId ?? null, filter.before ?? null, filter.limit])
    return rows.map((r) => ({ id: r.id, at: iso(r.at)!, actor: r.actor, action: r.action, deviceId: r.device_id, address: r.address, detail: r.detail }))
  }

  // --- latest state -------------------------------------------------------------

  async saveStates (states: StoredState[]): Promise<void> {
    if (states.length === 0) return
    await this.db.query(
      `INSERT INTO device_state (device_id, online, last_seen, state)
       SELECT d, o, l, s FROM unnest($1::text[], $2::boolean[], $3::timestamptz[], $4::jsonb[]) AS t (d, o, l, s)
       ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, state = excluded.state`,
      [states.map((s) => s.deviceId), states.map((s) => s.online), states.map((s) => s.lastSeen), states.map((s) => JSON.stringify(s.state))])
  }

  async loadStates (): Promise<StoredState[]> {
    const rows = await this.db.query<{ device_id: string, online: boolean, last_seen: Date | null, state: StoredState['state'] }>(
      'SELECT device_id, online, last_seen, state FROM device_state')
    return rows.map((r) => ({ deviceId: r.device_id, online: r.online, lastSeen: iso(r.last_seen), state: r.state }))
  }
}

// scrypt of a random password: verifying against it costs what a real check costs.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
