import type { SqlClient } from './sql.js'

/**
 * What one maker account may hold. Sign-up is open, so each bound is per
 * account and every account gets the same; docs/security.md lists them.
 */
export interface MakerQuotas {
  /** Models per maker. Default 200. */
  modelsPerMaker: number
  /** Devices per maker, all models together. Default 100000. */
  devicesPerMaker: number
  /** Devices one provisioning request may make. Default 1000. */
  provisionBatch: number
  /** A mapping's size as JSON, in bytes. Default 65536. */
  mappingBytes: number
  /** A mapping's reading rules, set rules, constant fields, actions and action params, together. Default 512. */
  mappingRules: number
  /**
   * The mappings one page of `GET /v1/models` holds together, as JSON, in
   * bytes; a page stops before the model that would go over it (it holds at
   * least one) and `next` continues. Serializing an answer holds the hub's
   * thread: 200 models of 56 KB made an 11 MB answer and a stall of tens of
   * ms for everyone. Default 1048576 (1 MiB).
   */
  modelPageBytes: number
}

export const defaultMakerQuotas: Readonly<MakerQuotas> = {
  modelsPerMaker: 200,
  devicesPerMaker: 100_000,
  provisionBatch: 1000,
  mappingBytes: 64 * 1024,
  mappingRules: 512,
  modelPageBytes: 1024 * 1024,
}

/** A maker's request that would take it over one of its quotas; the message says which and what to do. */
export class QuotaExceeded extends Error {}

const sizeOf = (v: unknown): number => Array.isArray(v) ? v.length : v !== null && typeof v === 'object' ? Object.keys(v).length : 0
const field = (v: unknown, key: string): unknown => v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined

/** How many rules, fields and actions a mapping as submitted has; counted before it is parsed, so a huge one costs little. */
export function mappingRuleCount (mapping: unknown): number {
  const commands = field(mapping, 'commands')
  const actions = field(commands, 'actions')
  let count = sizeOf(field(mapping, 'readings')) + sizeOf(field(commands, 'set')) + sizeOf(field(commands, 'fields')) + sizeOf(actions)
  if (actions !== null && typeof actions === 'object') {
    for (const action of Object.values(actions)) count += sizeOf(field(action, 'fields')) + sizeOf(field(action, 'params'))
  }
  return count
}

/** True when `value` nests deeper than `max`; walked with a stack of its own, so any depth is safe to ask about. */
export function nestedDeeperThan (value: unknown, max: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 0]]
  while (pending.length > 0) {
    const [node, depth] = pending.pop() as [unknown, number]
    if (node === null || typeof node !== 'object') continue
    if (depth >= max) return true
    for (const child of Object.values(node)) pending.push([child, depth + 1])
  }
  return false
}

/** The deepest a mapping nests: the language itself needs 5 levels (commands.actions.start.fields.path). */
const maxMappingDepth = 16

/** Why a mapping as submitted is over the quotas, or null. */
export function mappingQuotaProblem (mapping: unknown, quotas: Pick<MakerQuotas, 'mappingBytes' | 'mappingRules'>): string | null {
  // First, as JSON.stringify recurses: a body of 1 MiB can nest half a million deep.
  if (nestedDeeperThan(mapping, maxMappingDepth)) return `it nests deeper than ${maxMappingDepth} levels`
  const bytes = Buffer.byteLength(JSON.stringify(mapping) ?? '')
  if (bytes > quotas.mappingBytes) return `it is ${bytes} bytes of JSON; the limit is ${quotas.mappingBytes}`
  const rules = mappingRuleCount(mapping)
  if (rules > quotas.mappingRules) return `it has ${rules} rules, fields and actions; the limit is ${quotas.mappingRules}`
  return null
}

/** Locks the maker's row for the transaction, so that two requests cannot both take its last unit of quota. */
export async function lockMaker (tx: Pick<SqlClient, 'query'>, makerId: string): Promise<void> {
  await tx.query('SELECT id FROM makers WHERE id = $1 FOR UPDATE', [makerId])
}
