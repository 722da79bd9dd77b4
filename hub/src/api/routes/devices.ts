import { z } from 'zod'
import { isCapabilityName, isTimeZone } from '@trellis/device-sdk'
import type { DeviceContext } from '../../registry/directory.js'
import { QueryRefused, type Aggregate } from '../../store/telemetry.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { actorOf, readableCapabilities, recordGrantedReads, visibleDevice, type ApiContext } from '../context.js'
import type { Caller } from '../route.js'
import { isHealthCapability } from '../../consent/health.js'
import { IdParams } from '../params.js'
import { durationUnits, parseDuration } from '../../time/duration.js'

/** A zone's name as the zone database writes it (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`, `UTC`): never an offset such as `+01:00`. */
const zoneName = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/

/**
 * An IANA time zone, kept as the zone database spells it: `europe/berlin`
 * becomes `Europe/Berlin`, so that one zone is one name.
 */
export const TimeZone = z.string()
  .refine((zone) => zone.length <= 64 && zoneName.test(zone) && isTimeZone(zone), 'an IANA time zone such as Europe/Berlin or UTC')
  .transform((zone) => new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone)

export const ProvisionRequest = z.strictObject({
  model: z.string().min(1).max(64),
  /** How many devices to provision at once. Default 1; at most the hub's provisioning batch cap (default 1000). */
  count: z.number().int().min(1).max(100_000).default(1),
  /**
   * A gateway of yours (a device whose model's mapping has a `gateway`
   * section): the devices are its children, never connect themselves, and
   * their readings come only through it. Default none.
   */
  gateway: z.string().min(1).max(64).optional(),
  /**
   * The IANA time zone the devices are installed in: a local time they send
   * without an offset (Tasmota's `Time`) is read in it, before the zone of
   * the model's mapping. Default none: the mapping's zone, else UTC.
   */
  timeZone: TimeZone.optional(),
})
export type ProvisionRequest = z.infer<typeof ProvisionRequest>

export const DeviceUpdate = z.strictObject({
  /** The device's IANA time zone; null gives it back its model's. Absent: unchanged. */
  timeZone: TimeZone.nullable().optional(),
})
export type DeviceUpdate = z.infer<typeof DeviceUpdate>

export const ClaimRequest = z.strictObject({ claimCode: z.string().trim().min(4).max(64) })
export type ClaimRequest = z.infer<typeof ClaimRequest>

export const DeviceListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().max(64).optional(),
})

const intervalUnits = Object.keys(durationUnits) as Array<keyof typeof durationUnits>
/** An InfluxQL interval, kept as text for the query: `30s`, `1m`, `1h`, `1d`. */
const Interval = z.string().regex(/^[1-9]\d{0,5}(ms|s|m|h|d|w)$/, 'a duration such as 30s, 1m, 1h or 1d')

export const TelemetryQuery = z.object({
  capability: z.string().min(1).max(64),
  /** ISO-8601; default one hour before `to`. */
  from: z.iso.datetime({ offset: true }).optional(),
  /** ISO-8601; default now. */
  to: z.iso.datetime({ offset: true }).optional(),
  every: Interval.optional(),
  agg: z.enum(['mean', 'min', 'max', 'last']).optional(),
  /** Most points returned. Default 10000; past it the answer says `truncated` and gives `next`. */
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
})

const Value = z.union([z.number(), z.boolean(), z.string()])

const TelemetryAnswer = z.object({
  device: z.string(),
  capability: z.string(),
  unit: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  every: z.string().optional(),
  agg: z.enum(['mean', 'min', 'max', 'last']).optional(),
  points: z.array(z.object({ ts: z.string(), value: Value.nullable() })),
  /** More points lie in the range than `limit`. */
  truncated: z.boolean(),
  /** When truncated: the `from` that continues after the last point (same `to`, `every`, `agg`); else null. */
  next: z.string().nullable(),
})

/** Reported value (null until the device reports one) and, for settable capabilities, a command's value not yet confirmed. */
const StateEntry = z.object({
  value: Value.nullable(),
  ts: z.string().nullable(),
  desired: z.object({ value: Value, command: z.string(), since: z.string() }).optional(),
})
export const DeviceView = z.object({
  id: z.string(),
  model: z.string(),
  modelName: z.string(),
  maker: z.string(),
  brand: z.string(),
  /** Shown to the maker only: whether an owner has claimed it (never who). */
  claimed: z.boolean().optional(),
  /**
   * The IANA zone its local times without an offset are read in (null: its
   * model's). Shown to its owner, and to its maker until it is claimed: an
   * owner's zone says where the owner lives.
   */
  timeZone: z.string().nullable().optional(),
  online: z.boolean(),
  lastSeen: z.string().nullable(),
  state: z.record(z.string(), StateEntry),
})

export function deviceRoutes (api: ApiContext) {
  /**
   * The device as the caller may see it: usage values only where it is the
   * owner, the maker of an unclaimed device, or holds a raw grant (logged for
   * the owner); a maker always sees health values.
   */
  const view = async (ctx: DeviceContext, caller: Caller, kind: 'state' | 'list' = 'state') => {
    const forMaker = caller.scope === 'maker'
    const readable = await readableCapabilities(api, caller, ctx)
    const raw = (cap: string) => readable.get(cap)?.resolution === 'raw'
    const s = api.state.get(ctx.id)
    const state: Record<string, { value: unknown, ts: string | null, desired?: { value: unknown, command: string, since: string } }> = {}
    // What the device reported for its previous owner is no one's to read now, but health is the maker's.
    const since = (cap: string) => forMaker && isHealthCapability(cap) ? null : ctx.releasedAt
    if (s) {
      for (const [cap, v] of s.readings) {
        const after = since(cap)
        if (raw(cap) && (after === null || v.ts > after)) state[cap] = { value: v.value, ts: new Date(v.ts).toISOString() }
      }
    }
    for (const [cap, d] of api.commands.desired(ctx.id)) {
      if (!raw(cap)) continue
      state[cap] = { ...(state[cap] ?? { value: null, ts: null }), desired: { value: d.value, command: d.command, since: new Date(d.since).toISOString() } }
    }
    recordGrantedReads(api, caller, ctx, readable, Object.keys(state), kind)
    return {
      id: ctx.id,
      model: ctx.model.id,
      modelName: ctx.model.name,
      maker: ctx.makerId,
      brand: await api.makerName(ctx.makerId),
      // A maker sees whether a device is claimed, never by whom.
      ...(forMaker ? { claimed: ctx.ownerId !== null } : {}),
      ...(caller.scope === 'owner' || (forMaker && ctx.ownerId === null) ? { timeZone: ctx.timeZone ?? null } : {}),
      online: s?.online ?? false,
      lastSeen: s?.lastSeen ? new Date(s.lastSeen).toISOString() : null,
      state,
    }
  }

  return [
    route({
      method: 'POST',
      path: '/v1/devices',
      operationId: 'provisionDevices',
      summary: 'Provision devices of a model; secrets and claim codes are shown once',
      tags: ['devices'],
      access: 'maker',
      body: ProvisionRequest,
      status: 201,
      response: z.object({ model: z.string(), timeZone: z.string().nullable(), devices: z.array(z.object({ id: z.string(), secret: z.string(), claimCode: z.string() })) }),
      errors: ['UNKNOWN_MODEL', 'UNKNOWN_GATEWAY', 'QUOTA_EXCEEDED'],
      handler: async ({ body, caller }) => {
        const model = await api.registry.getModel(body.model)
        if (!model || model.makerId !== caller.subject) throw errors.unknownModel(body.model)
        if (body.gateway !== undefined) {
          const gateway = await api.directory.get(body.gateway)
          if (!gateway || gateway.makerId !== caller.subject || !gateway.model.mapping?.gateway) throw errors.unknownGateway(body.gateway)
        }
        const timeZone = body.timeZone ?? null
        const devices = await api.registry.provisionDevices(model, body.count, body.gateway ?? null, timeZone)
        api.log.info({ makerId: caller.subject, modelId: model.id, count: devices.length, gatewayId: body.gateway, timeZone }, 'devices provisioned')
        return { model: model.id, timeZone, devices }
      },
    }),
    route({
      method: 'PATCH',
      path: '/v1/devices/{id}',
      operationId: 'updateDevice',
      summary: "Change a device's time zone: its maker's until it is claimed, then its owner's",
      tags: ['devices'],
      access: 'owner-or-maker',
      params: IdParams,
      body: DeviceUpdate,
      response: DeviceView,
      errors: ['NOT_FOUND', 'DEVICE_CLAIMED'],
      handler: async ({ params, body, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner', 'maker'])
        if (body.timeZone !== undefined) {
          // Before a claim the maker sets where a device is installed; after it the owner does (an owner moves house), and the maker does not learn where.
          const holder = caller.scope === 'owner' ? caller.subject : null
          if (holder === null && ctx.ownerId !== null) throw errors.deviceClaimed(ctx.id)
          const changed = await api.registry.setDeviceTimeZone(ctx.id, body.timeZone, holder)
          // Claimed, or released, since it was read.
          if (!changed) throw holder === null ? errors.deviceClaimed(ctx.id) : errors.notFound('device', ctx.id)
          api.log.info({ deviceId: ctx.id, by: caller.scope, timeZone: body.timeZone }, 'device time zone set')
        }
        return await view((await api.directory.get(ctx.id))!, caller)
      },
    }),
    route({
      method: 'POST',
      path: '/v1/devices/claim',
      operationId: 'claimDevice',
      summary: 'Claim a device by the claim code that came with it',
      tags: ['devices'],
      access: 'owner',
      body: ClaimRequest,
      response: DeviceView,
      errors: ['INVALID_CLAIM_CODE', 'RATE_LIMITED'],
      handler: async ({ body, caller, request }) => {
        const keys = [request.ip, caller.subject]
        api.throttle.check('failedClaim', keys)
        const device = await api.registry.claimDevice(caller.subject, body.claimCode)
        if (!device) {
          void api.throttle.spend('failedClaim', keys)
          api.audit.record({ actor: actorOf(caller), action: 'claim-failed', address: request.ip, detail: 'no unclaimed device has the claim code given' })
          throw errors.invalidClaimCode()
        }
        api.log.info({ ownerId: caller.subject, deviceId: device.id }, 'device claimed')
        api.audit.record({ actor: actorOf(caller), action: 'device-claimed', deviceId: device.id, address: request.ip, detail: 'claimed with its claim code' })
        return await view((await api.directory.get(device.id))!, caller)
      },
    }),
    route({
      method: 'GET',
      path: '/v1/devices',
      operationId: 'listDevices',
      summary: "The owner's devices, or the maker's fleet",
      tags: ['devices'],
      access: 'owner-or-maker',
      query: DeviceListQuery,
      response: z.object({ devices: z.array(DeviceView), next: z.string().nullable() }),
      handler: async ({ query, caller }) => {
        const filter = caller.scope === 'owner' ? { ownerId: caller.subject } : { makerId: caller.subject }
        const entries = await api.registry.listDevices(filter, { limit: query.limit, after: query.after })
        const devices = []
        for (const ctx of await api.directory.fromListing(entries)) devices.push(await view(ctx, caller, 'list'))
        return { devices, next: entries.length === query.limit ? entries[entries.length - 1].record.id : null }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/devices/{id}',
      operationId: 'getDevice',
      summary: "A device: model, brand, presence and latest state per capability (a maker sees a claimed device's health capabilities, and usage only under the owner's grants; an app only what its grants name)",
      tags: ['devices'],
      access: 'owner-or-grantee',
      params: IdParams,
      response: DeviceView,
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => await view(await visibleDevice(api, caller, params.id, ['owner', 'maker', 'app']), caller),
    }),
    route({
      method: 'GET',
      path: '/v1/devices/{id}/telemetry',
      operationId: 'getTelemetry',
      summary: "A capability's history, raw or aggregated per interval; for makers and apps what the owner's grants allow (hourly-only grants: every=1h)",
      tags: ['devices'],
      access: 'owner-or-grantee',
      params: IdParams,
      query: TelemetryQuery,
      response: TelemetryAnswer,
      errors: ['NOT_FOUND', 'BAD_REQUEST', 'UNKNOWN_CAPABILITY', 'NO_GRANT', 'RATE_LIMITED', 'STORAGE_UNAVAILABLE'],
      handler: async ({ params, query, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id, ['owner', 'maker', 'app'])
        api.throttle.take('history', [caller.tokenId])
        if (!isCapabilityName(query.capability)) throw errors.badRequest(`${query.capability} is not a capability; see the catalogue in /docs`)
        const cap = ctx.model.capabilities.get(query.capability)
        if (!cap) throw errors.unknownCapability(query.capability, ctx.model.name)
        const readable = await readableCapabilities(api, caller, ctx)
        const access = readable.get(cap.name)
        if (!access) throw errors.noGrant(`no grant of this device's owner lets you read ${cap.name} of ${ctx.id}; the owner can give one (POST /v1/grants)`)
        if (access.resolution === 'hourly' && (query.every !== '1h' || query.agg === undefined)) {
          throw errors.noGrant(`your grant for ${cap.name} of ${ctx.id} gives hourly aggregates only: ask with every=1h&agg=mean (or min, max, last)`)
        }
        const to = query.to ? new Date(query.to) : new Date()
        let from = query.from ? new Date(query.from) : new Date(to.getTime() - 3_600_000)
        if (from > to) throw errors.badRequest('from is after to')
        // History from before the device's last release belongs to its previous owner.
        const allHidden = ctx.releasedAt !== null && to.getTime() <= ctx.releasedAt
        if (ctx.releasedAt !== null && !allHidden && from.getTime() <= ctx.releasedAt) from = new Date(ctx.releasedAt + 1)
        if ((query.every === undefined) !== (query.agg === undefined)) throw errors.badRequest('every and agg go together: every=1m&agg=mean')
        if (query.agg && cap.kind !== 'number' && query.agg !== 'last') {
          throw errors.badRequest(`${cap.name} is a ${cap.kind}; only agg=last applies to it`)
        }
        const everyMs = query.every ? parseDuration(query.every, intervalUnits)! : 0
        if (query.every) {
          const buckets = (to.getTime() - from.getTime()) / everyMs
          if (buckets > 10_000) throw errors.badRequest(`every=${query.every} over this range makes ${Math.ceil(buckets)} intervals; the limit is 10000`)
        }
        let points: Awaited<ReturnType<typeof api.store.history>> = []
        if (!allHidden) try {
          points = await api.store.history({
            deviceId: ctx.id,
            capability: cap.name,
            kind: cap.kind,
            from,
            to,
            // One more than asked: whether the range holds more is then known without a count.
            limit: query.limit + 1,
            ...(query.every && { every: query.every, agg: query.agg as Aggregate }),
          })
        } catch (err) {
          if (err instanceof QueryRefused) throw errors.badRequest(err.message)
          api.log.error({ err: (err as Error).message }, 'telemetry query failed')
          throw errors.storageUnavailable('the telemetry store did not answer; try again shortly')
        }
        const truncated = points.length > query.limit
        recordGrantedReads(api, caller, ctx, readable, [cap.name], 'history')
        return {
          device: ctx.id,
          capability: cap.name,
          unit: cap.unit ?? null,
          from: from.toISOString(),
          to: to.toISOString(),
          ...(query.every && { every: query.every, agg: query.agg }),
          points: truncated ? points.slice(0, query.limit) : points,
          truncated,
          next: truncated ? new Date(Date.parse(points[query.limit - 1].ts) + (query.every ? everyMs : 1)).toISOString() : null,
        }
      },
    }),
  ]
}
