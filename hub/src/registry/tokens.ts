import type { EventEmitter } from 'node:events'
import type { SqlClient } from './sql.js'
import { newId, newToken, sha256Hex } from './secrets.js'
import { iso, type Scope, type TokenGrant, type TokenPolicy, type TokenRecord } from './records.js'

/** Bearer tokens of makers, owners and the admin, stored as SHA-256 digests; emits `token-revoked` on the registry. */
export class Tokens {
  constructor (private readonly db: SqlClient, private readonly events: EventEmitter) {}

  /**
   * A new token for `subject`, expiring as `policy` says for its scope. Past
   * the policy's cap of live tokens the oldest are revoked (event `token-revoked`).
   * `tx`: the transaction the token is written in, with the account it belongs to.
   */
  async issueToken (scope: Scope, subject: string, label?: string, policy: TokenPolicy = {}, tx: Pick<SqlClient, 'query'> = this.db): Promise<{ token: string, id: string, expiresAt: string | null }> {
    const token = newToken(scope)
    const id = newId('tok')
    const ttlSeconds = scope === 'owner' ? policy.ownerTtlSeconds ?? 30 * 86_400 : scope === 'maker' ? policy.makerTtlSeconds ?? 90 * 86_400 : null
    const rows = await tx.query<{ expires_at: Date | null }>(
      `INSERT INTO tokens (hash, id, scope, subject, label, expires_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(secs => $6::int) END)
       RETURNING expires_at`,
      [sha256Hex(token), id, scope, subject, label ?? null, ttlSeconds])
    const revoked = await tx.query<{ id: string }>(
      `UPDATE tokens SET revoked_at = now() WHERE id IN (
         SELECT id FROM tokens WHERE subject = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
         ORDER BY (id = $3) DESC, created_at DESC OFFSET $2) RETURNING id`, [subject, policy.maxLivePerAccount ?? 50, id])
    for (const r of revoked) this.events.emit('token-revoked', r.id)
    return { token, id, expiresAt: iso(rows[0].expires_at) }
  }

  async resolveToken (token: string): Promise<TokenGrant | null> {
    const rows = await this.db.query<{ id: string, scope: Scope, subject: string, expires_at: Date | null }>(
      'SELECT id, scope, subject, expires_at FROM tokens WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [sha256Hex(token)])
    const row = rows[0]
    return row ? { tokenId: row.id, scope: row.scope, subject: row.subject, expiresAt: row.expires_at === null ? null : new Date(row.expires_at).getTime() } : null
  }

  /** The subject's tokens, newest first; never the tokens themselves. */
  async listTokens (subject: string): Promise<TokenRecord[]> {
    const rows = await this.db.query<{ id: string, scope: Scope, label: string | null, created_at: Date, expires_at: Date | null, revoked_at: Date | null }>(
      'SELECT id, scope, label, created_at, expires_at, revoked_at FROM tokens WHERE subject = $1 ORDER BY created_at DESC, id LIMIT 200', [subject])
    return rows.map((r) => ({ id: r.id, scope: r.scope, label: r.label, createdAt: iso(r.created_at)!, expiresAt: iso(r.expires_at), revokedAt: iso(r.revoked_at) }))
  }

  /** Revokes a token of `subject` (any subject's when null); false when there is no such live token. */
  async revokeToken (tokenId: string, subject: string | null): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      'UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR subject = $2) RETURNING id', [tokenId, subject])
    if (!rows[0]) return false
    this.events.emit('token-revoked', tokenId)
    return true
  }
}
