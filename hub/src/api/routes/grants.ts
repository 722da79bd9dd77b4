import { z } from 'zod'
import { CapabilityName } from '@trellis/device-sdk'
import type { App, Grant } from '../../consent/index.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { actorOf, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'

export const AppRequest = z.strictObject({ name: z.string().trim().min(1).max(100) })
export type AppRequest = z.infer<typeof AppRequest>

export const GrantRequest = z.strictObject({
  /** A maker (its id, as shown on a device: `maker`) or one of the owner's apps. */
  grantee: z.strictObject({ kind: z.enum(['maker', 'app']), id: z.string().min(1).max(64) }),
  /** The owner's devices it covers: 1 to 100. */
  devices: z.array(z.string().min(1).max(64)).min(1).max(100),
  /** Capabilities of the catalogue it covers: 1 to 32. */
  capabilities: z.array(CapabilityName).min(1).max(32),
  /** `raw` readings, or `hourly` aggregates only. Default raw. */
  resolution: z.enum(['raw', 'hourly']).default('raw'),
  /** When it ends by itself (ISO-8601); at most `maxGrantDays` (default 366) ahead. */
  expiresAt: z.iso.datetime({ offset: true }),
})
export type GrantRequest = z.infer<typeof GrantRequest>

const AppView = z.object({ id: z.string(), name: z.string(), createdAt: z.string(), revokedAt: z.string().nullable() })
const GrantView = z.object({
  id: z.string(),
  grantee: z.object({ kind: z.enum(['maker', 'app']), id: z.string() }),
  devices: z.array(z.string()),
  capabilities: z.array(z.string()),
  resolution: z.enum(['raw', 'hourly']),
  createdAt: z.string(),
  expiresAt: z.string(),
  revokedAt: z.string().nullable(),
  /** Neither revoked nor expired. */
  active: z.boolean(),
})
const AccessRecordView = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  grant: z.string(),
  device: z.string(),
  kind: z.enum(['state', 'history', 'list']),
  capabilities: z.array(z.string()),
  /** Reads folded into this record (the same read within a second). */
  reads: z.number(),
})

const isoOf = (ms: number | null) => ms === null ? null : new Date(ms).toISOString()
const appView = (a: App) => ({ id: a.id, name: a.name, createdAt: isoOf(a.createdAt)!, revokedAt: isoOf(a.revokedAt) })
const grantView = (g: Grant, now = Date.now()) => ({
  id: g.id,
  grantee: g.grantee,
  devices: g.devices,
  capabilities: g.capabilities,
  resolution: g.resolution,
  createdAt: isoOf(g.createdAt)!,
  expiresAt: isoOf(g.expiresAt)!,
  revokedAt: isoOf(g.revokedAt),
  active: g.revokedAt === null && g.expiresAt > now,
})

/** Owners' apps and grants, and the access log; makers and apps see the grants they hold. */
export function grantRoutes (api: ApiContext) {
  const consent = () => {
    if (!api.consent) throw errors.notFound('route', 'consent')
    return api.consent
  }
  return [
    route({
      method: 'POST',
      path: '/v1/apps',
      operationId: 'createApp',
      summary: 'Register a third-party app: it gets its own API token (shown once) and reads only what your grants name',
      tags: ['consent'],
      access: 'owner',
      body: AppRequest,
      status: 201,
      response: AppView.extend({ token: z.string() }),
      errors: ['QUOTA_EXCEEDED'],
      handler: async ({ body, caller }) => {
        const c = consent()
        if (await c.grants.liveAppCount(caller.subject) >= c.limits.maxAppsPerOwner) throw errors.quotaExceeded(`an owner may register at most ${c.limits.maxAppsPerOwner} apps; remove one first (DELETE /v1/apps/{id})`)
        const app = await c.grants.createApp(caller.subject, body.name)
        const { token } = await api.registry.issueToken('app', app.id, body.name, api.tokens)
        return { ...appView(app), token }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/apps',
      operationId: 'listApps',
      summary: 'Your apps, newest first',
      tags: ['consent'],
      access: 'owner',
      response: z.object({ apps: z.array(AppView) }),
      handler: async ({ caller }) => ({ apps: (await consent().grants.listApps(caller.subject)).map(appView) }),
    }),
    route({
      method: 'DELETE',
      path: '/v1/apps/{id}',
      operationId: 'deleteApp',
      summary: 'Remove an app: its tokens stop working and its grants are revoked, at once',
      tags: ['consent'],
      access: 'owner',
      params: IdParams,
      response: AppView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller, request }) => {
        const app = await consent().grants.revokeApp(caller.subject, params.id)
        if (!app) throw errors.notFound('app', params.id)
        for (const t of await api.registry.listTokens(app.id)) if (t.revokedAt === null) await api.registry.revokeToken(t.id, app.id)
        api.audit.record({ actor: actorOf(caller), action: 'token-revoked', address: request.ip, detail: `app ${app.id} removed with its tokens and grants` })
        return appView(app)
      },
    }),
    route({
      method: 'POST',
      path: '/v1/grants',
      operationId: 'createGrant',
      summary: 'Let a maker or one of your apps read chosen capabilities of chosen devices, raw or hourly, until a date',
      tags: ['consent'],
      access: 'owner',
      body: GrantRequest,
      status: 201,
      response: GrantView,
      errors: ['NOT_FOUND', 'BAD_REQUEST', 'QUOTA_EXCEEDED'],
      handler: async ({ body, caller }) => {
        const c = consent()
        const expiresAt = Date.parse(body.expiresAt)
        const now = Date.now()
        if (expiresAt <= now) throw errors.badRequest('expiresAt is in the past; a grant needs an end in the future')
        if (expiresAt > now + c.limits.maxGrantDays * 86_400_000) throw errors.badRequest(`a grant runs at most ${c.limits.maxGrantDays} days; give an earlier expiresAt and renew it later`)
        const devices = [...new Set(body.devices)]
        for (const id of devices) {
          const ctx = await api.directory.get(id)
          if (!ctx || ctx.ownerId !== caller.subject) throw errors.notFound('device', id)
        }
        if (body.grantee.kind === 'maker' ? !(await api.registry.getMaker(body.grantee.id)) : (await c.grants.getApp(body.grantee.id))?.ownerId !== caller.subject) {
          throw errors.notFound(body.grantee.kind, body.grantee.id)
        }
        if (body.grantee.kind === 'app' && (await c.grants.getApp(body.grantee.id))!.revokedAt !== null) throw errors.notFound('app', body.grantee.id)
        if (await c.grants.liveCount(caller.subject) >= c.limits.maxGrantsPerOwner) throw errors.quotaExceeded(`an owner may hold at most ${c.limits.maxGrantsPerOwner} live grants; revoke one first`)
        const grant = await c.grants.create({ ownerId: caller.subject, grantee: body.grantee, devices, capabilities: [...new Set(body.capabilities)], resolution: body.resolution, expiresAt })
        api.log.info({ ownerId: caller.subject, grantId: grant.id, grantee: `${grant.grantee.kind}:${grant.grantee.id}` }, 'grant given')
        return grantView(grant)
      },
    }),
    route({
      method: 'GET',
      path: '/v1/grants',
      operationId: 'listGrants',
      summary: 'An owner: the grants you gave. A maker or app: the grants you hold. Newest first, revoked and expired included',
      tags: ['consent'],
      access: 'owner-or-grantee',
      response: z.object({ grants: z.array(GrantView) }),
      handler: async ({ caller }) => {
        const c = consent()
        const grants = caller.scope === 'owner' ? await c.grants.listForOwner(caller.subject) : await c.grants.listForGrantee(caller.scope as 'maker' | 'app', caller.subject)
        return { grants: grants.map((g) => grantView(g)) }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/grants/{id}',
      operationId: 'getGrant',
      summary: 'One grant you gave or hold',
      tags: ['consent'],
      access: 'owner-or-grantee',
      params: IdParams,
      response: GrantView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        const g = await consent().grants.get(params.id)
        const mine = g && (caller.scope === 'owner' ? g.ownerId === caller.subject : g.grantee.kind === caller.scope && g.grantee.id === caller.subject)
        if (!g || !mine) throw errors.notFound('grant', params.id)
        return grantView(g)
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/grants/{id}',
      operationId: 'revokeGrant',
      summary: 'Revoke a grant you gave: it stops covering reads at once',
      tags: ['consent'],
      access: 'owner',
      params: IdParams,
      response: GrantView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        const g = await consent().grants.revoke(caller.subject, params.id)
        if (!g) throw errors.notFound('grant', params.id)
        return grantView(g)
      },
    }),
    route({
      method: 'GET',
      path: '/v1/me/access-log',
      operationId: 'getAccessLog',
      summary: 'Who read what of your devices under your grants, and when; newest first, kept 90 days',
      tags: ['consent'],
      access: 'owner',
      query: z.object({
        limit: z.coerce.number().int().min(1).max(500).default(100),
        /** An id from a previous page: records older than it. */
        before: z.string().regex(/^\d{1,18}$/).optional(),
        device: z.string().max(64).optional(),
      }),
      response: z.object({ records: z.array(AccessRecordView), next: z.string().nullable() }),
      handler: async ({ query, caller }) => {
        const records = await consent().accessLog.read(caller.subject, { limit: query.limit, before: query.before, deviceId: query.device })
        return {
          records: records.map((r) => ({ id: r.id, at: r.at, actor: r.actor, grant: r.grantId, device: r.deviceId, kind: r.kind, capabilities: r.capabilities, reads: r.reads })),
          next: records.length === query.limit ? records[records.length - 1].id : null,
        }
      },
    }),
  ]
}
