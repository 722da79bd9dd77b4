import type { EventEmitter } from 'node:events'
import type { SqlClient } from './sql.js'
import { newId, newToken, sha256Hex } from './secrets.js'
import { iso, type Scope, type TokenGrant, type TokenRecord } from './records.js'

/** Bearer tokens of makers, owners and the admin, stored as SHA-256 digests; emits `token-revoked` on the registry. */
export class Tokens {
  constructor (private readonly db: SqlClient, private readonly events: EventEmitter) {}

  /** `tx`: the transaction the token is written in, with the account it belongs to. */
  async issueToken (scope: Scope, subject: string, label?: string, tx: Pick<SqlClient, 'query'> = this.db): Promise<string> {
    const token = newToken(scope)
    await tx.query('INSERT INTO tokens (hash, id, scope, subject, label) VALUES ($1, $2, $3, $4, $5)',
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
    this.events.emit('token-revoked', tokenId)
    return true
  }
}
