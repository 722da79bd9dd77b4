import { z } from 'zod'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'

export const AuditQuery = z.object({
  /** Only this device's records. */
  device: z.string().min(1).max(64).optional(),
  /** Records older than this record id (for paging). */
  before: z.string().regex(/^\d{1,18}$/, 'a record id').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

const AuditRecordView = z.object({
  id: z.string(), at: z.string(), actor: z.string(), action: z.string(), deviceId: z.string().nullable(), address: z.string().nullable(), detail: z.string(),
})

export function auditRoutes (api: ApiContext) {
  return [
    route({
      method: 'GET',
      path: '/v1/audit',
      operationId: 'readAudit',
      summary: 'Security audit log, newest first: all of it for the platform admin, its own devices\' records for a maker',
      tags: ['audit'],
      access: 'maker-or-admin',
      query: AuditQuery,
      response: z.object({ records: z.array(AuditRecordView), next: z.string().nullable() }),
      handler: async ({ query, caller }) => {
        await api.audit.flush()
        const records = await api.registry.readAudit({
          makerId: caller.scope === 'maker' ? caller.subject : undefined,
          deviceId: query.device,
          before: query.before,
          limit: query.limit,
        })
        // A maker learns that its device was claimed or released, never by whom nor from where.
        const shown = caller.scope === 'maker'
          ? records.map((r) => r.actor.startsWith('owner:') ? { ...r, actor: 'owner', address: null } : r)
          : records
        return { records: shown, next: records.length === query.limit ? records[records.length - 1].id : null }
      },
    }),
  ]
}
