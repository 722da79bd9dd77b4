import type { SqlClient } from './sql.js'
import { hashPassword, newId, verifyPassword } from './secrets.js'
import { iso, type Maker, type Owner, type TokenPolicy } from './records.js'
import type { Tokens } from './tokens.js'

export class EmailTakenError extends Error {}

/** Makers and owners, each written with its first token in one transaction. */
export class Accounts {
  constructor (private readonly db: SqlClient, private readonly tokens: Tokens) {}

  async createMaker (name: string, policy?: TokenPolicy): Promise<{ maker: Maker, token: string, expiresAt: string | null }> {
    const id = newId('mk')
    return await this.db.transaction(async (tx) => {
      const rows = await tx.query<{ created_at: Date }>('INSERT INTO makers (id, name) VALUES ($1, $2) RETURNING created_at', [id, name])
      const { token, expiresAt } = await this.tokens.issueToken('maker', id, 'created at sign-up', policy, tx)
      return { maker: { id, name, createdAt: iso(rows[0].created_at)! }, token, expiresAt }
    })
  }

  async getMaker (id: string): Promise<Maker | null> {
    const rows = await this.db.query<{ id: string, name: string, created_at: Date }>('SELECT id, name, created_at FROM makers WHERE id = $1', [id])
    return rows[0] ? { id: rows[0].id, name: rows[0].name, createdAt: iso(rows[0].created_at)! } : null
  }

  async createOwner (email: string, password: string, policy?: TokenPolicy): Promise<{ owner: Owner, token: string, expiresAt: string | null }> {
    const id = newId('ow')
    const hash = await hashPassword(password)
    try {
      return await this.db.transaction(async (tx) => {
        const rows = await tx.query<{ created_at: Date }>(
          'INSERT INTO owners (id, email, password_hash) VALUES ($1, $2, $3) RETURNING created_at', [id, email.toLowerCase(), hash])
        const { token, expiresAt } = await this.tokens.issueToken('owner', id, 'created at sign-up', policy, tx)
        return { owner: { id, email: email.toLowerCase(), createdAt: iso(rows[0].created_at)! }, token, expiresAt }
      })
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new EmailTakenError(email)
      throw err
    }
  }

  /** A new session token for the owner with these credentials, or null. */
  async login (email: string, password: string, policy?: TokenPolicy): Promise<{ owner: Owner, token: string, expiresAt: string | null } | null> {
    const rows = await this.db.query<{ id: string, email: string, password_hash: string, created_at: Date }>(
      'SELECT id, email, password_hash, created_at FROM owners WHERE email = $1', [email.toLowerCase()])
    const row = rows[0]
    // Hash even for an unknown email, so response time does not reveal which emails exist.
    const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_HASH)
    if (!row || !ok) return null
    const { token, expiresAt } = await this.tokens.issueToken('owner', row.id, 'session', policy)
    return { owner: { id: row.id, email: row.email, createdAt: iso(row.created_at)! }, token, expiresAt }
  }
}

// scrypt of a random password: verifying against it costs what a real check costs.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
