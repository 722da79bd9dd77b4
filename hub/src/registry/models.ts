import type { EventEmitter } from 'node:events'
import { resolveCapabilities, type CapabilityDeclaration } from '@trellis/device-sdk'
import type { SqlClient } from './sql.js'
import { newId } from './secrets.js'
import { lockMaker, QuotaExceeded, type MakerQuotas } from './quotas.js'
import { toModel, type Model, type ModelRow } from './records.js'

export class ModelNameTakenError extends Error {}

/** A maker's device models: capabilities and mapping, within the maker's model quota; emits `model-changed` on the registry. */
export class Models {
  constructor (private readonly db: SqlClient, private readonly events: EventEmitter, private readonly quotas: Readonly<MakerQuotas>) {}

  async createModel (makerId: string, input: { name: string, capabilities: CapabilityDeclaration[], mapping?: unknown, heartbeatSeconds?: number }): Promise<Model> {
    resolveCapabilities(input.capabilities) // throws a CapabilityDeclarationError naming the problem
    const id = newId('md')
    try {
      return await this.db.transaction(async (tx) => {
        await lockMaker(tx, makerId)
        const [{ count }] = await tx.query<{ count: number }>('SELECT count(*)::int AS count FROM models WHERE maker_id = $1', [makerId])
        const limit = this.quotas.modelsPerMaker
        if (count >= limit) throw new QuotaExceeded(`you have ${count} models, the limit per maker; reuse or delete one`)
        const rows = await tx.query<ModelRow>(
          'INSERT INTO models (id, maker_id, name, capabilities, mapping, heartbeat_seconds) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
          [id, makerId, input.name, JSON.stringify(input.capabilities), input.mapping === undefined ? null : JSON.stringify(input.mapping), input.heartbeatSeconds ?? null])
        return toModel(rows[0])
      })
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new ModelNameTakenError(input.name)
      throw err
    }
  }

  async getModel (id: string): Promise<Model | null> {
    const rows = await this.db.query<ModelRow>('SELECT * FROM models WHERE id = $1', [id])
    return rows[0] ? toModel(rows[0]) : null
  }

  /**
   * The maker's models in the order declared, a page at a time: `after` is the
   * last id of the previous page. A page holds at most `limit` models, and
   * stops before the one whose mapping would take it over the maker quota
   * `modelPageBytes` (it holds at least one). `next` is the `after` of the
   * following page, null when none follows.
   */
  async listModels (makerId: string, page: { limit: number, after?: string }): Promise<{ models: Model[], next: string | null }> {
    // Measured in PostgreSQL, so that the mappings left out are neither sent nor parsed here.
    const rows = await this.db.query<ModelRow & { taken: string, candidates: string }>(
      `SELECT * FROM (
         SELECT c.*, sum(c.mapping_bytes) OVER w AS running, row_number() OVER w AS taken, count(*) OVER () AS candidates
         FROM (
           SELECT m.*, coalesce(octet_length(m.mapping::text), 0) AS mapping_bytes FROM models m WHERE maker_id = $1
           AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at, id FROM models WHERE id = $2 AND maker_id = $1))
           ORDER BY created_at, id LIMIT $3
         ) c
         WINDOW w AS (ORDER BY c.created_at, c.id)
       ) p WHERE taken = 1 OR running <= $4 ORDER BY created_at, id`, [makerId, page.after ?? null, page.limit, this.quotas.modelPageBytes])
    const last = rows.at(-1)
    // A full page may be followed by an empty one, as before; a page cut short by its bytes always has a next.
    const more = last !== undefined && (rows.length === page.limit || rows.length < Number(last.candidates))
    return { models: rows.map(toModel), next: more ? last.id : null }
  }

  /** These models, in one query; ids with no model are left out. */
  async getModels (ids: readonly string[]): Promise<Model[]> {
    if (ids.length === 0) return []
    const rows = await this.db.query<ModelRow>('SELECT * FROM models WHERE id = ANY($1::text[])', [ids])
    return rows.map(toModel)
  }

  async setMapping (modelId: string, mapping: unknown | null): Promise<Model | null> {
    const rows = await this.db.query<ModelRow>(
      'UPDATE models SET mapping = $2, updated_at = now() WHERE id = $1 RETURNING *', [modelId, mapping === null ? null : JSON.stringify(mapping)])
    if (!rows[0]) return null
    this.events.emit('model-changed', modelId)
    return toModel(rows[0])
  }
}
