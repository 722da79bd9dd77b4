import type { Logger } from 'pino'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import type { Registry, TokenPolicy } from '../registry/registry.js'
import type { StateStore } from '../state/state.js'
import type { TelemetryStore } from '../store/telemetry.js'
import type { DeadLetters } from '../ingest/dead-letters.js'
import type { HubMetrics } from '../metrics.js'
import type { PointWriter } from '../store/writer.js'
import type { CommandService } from '../commands/service.js'
import type { AuditLog } from '../audit/audit-log.js'
import type { Caller } from './route.js'
import type { RequestThrottle } from './throttle.js'
import type { Consent } from '../consent/index.js'
import { ConsentPolicy, type ReadAccess } from '../consent/policy.js'
import { errors } from './errors.js'

/** What route handlers work with. */
export interface ApiContext {
  registry: Registry
  directory: DeviceDirectory
  state: StateStore
  store: TelemetryStore
  writer: PointWriter
  deadLetters: DeadLetters
  metrics: HubMetrics
  log: Logger
  /** Pending desired values per device, for the device view. */
  commands: Pick<CommandService, 'desired'>
  audit: AuditLog
  /** Rate limits on sign-up, login, claim and history. */
  throttle: RequestThrottle
  /** Lifetime and number of API tokens. */
  tokens: TokenPolicy
  /** A model's heartbeat allowance when it declares none, in seconds (the presence sweep's default). Default 600. */
  defaultHeartbeatSeconds?: number
  /** Maker display names by id, cached. */
  makerName (id: string): Promise<string>
  /** In a cluster, whether this node reaches the Redis the nodes share. Default none: a single node needs no Redis. */
  redisUp?: () => boolean
  /** Grants, apps, the access log and fleet insight. Default none: no grant exists, so makers see health data only of claimed devices. */
  consent?: Consent
}

const noGrants = new ConsentPolicy(null)

/** Capability → how the caller may read it, for one device it can see. */
export async function readableCapabilities (api: ApiContext, caller: Caller, ctx: DeviceContext): Promise<Map<string, ReadAccess>> {
  return await (api.consent?.policy ?? noGrants).readable(caller, ctx)
}

/** Records, for the owner's access log, the reads of `capabilities` made under grants (reads by right are not logged). */
export function recordGrantedReads (api: ApiContext, caller: Caller, ctx: DeviceContext, readable: Map<string, ReadAccess>, capabilities: Iterable<string>, kind: 'state' | 'history' | 'list'): void {
  if (!api.consent || ctx.ownerId === null) return
  const byGrant = new Map<string, string[]>()
  for (const c of capabilities) {
    const grant = readable.get(c)?.grant
    if (grant) byGrant.set(grant.id, [...(byGrant.get(grant.id) ?? []), c])
  }
  for (const [grantId, caps] of byGrant) {
    api.consent.accessLog.record({ ownerId: ctx.ownerId, actor: actorOf(caller), grantId, deviceId: ctx.id, kind, capabilities: caps.sort() })
  }
}

/**
 * The device if the caller may see it: its owner, its maker, or an app that
 * holds a live grant on it (when `allow` names `app`). Anyone else gets the
 * same 404 as for a device that does not exist. What of it the caller may
 * read is `readableCapabilities`'s answer.
 */
export async function visibleDevice (api: ApiContext, caller: Caller, id: string, allow: Array<'owner' | 'maker' | 'app'> = ['owner', 'maker']): Promise<DeviceContext> {
  const ctx = await api.directory.get(id)
  if (ctx) {
    if (caller.scope === 'owner' && allow.includes('owner') && ctx.ownerId === caller.subject) return ctx
    if (caller.scope === 'maker' && allow.includes('maker') && ctx.makerId === caller.subject) return ctx
    if (caller.scope === 'app' && allow.includes('app') && api.consent && await api.consent.policy.appMaySee(caller.subject, ctx)) return ctx
  }
  throw errors.notFound('device', id)
}

/** The audit log's name for a caller. */
export function actorOf (caller: Caller | null): string {
  if (!caller) return 'anonymous'
  return caller.scope === 'admin' ? 'admin' : `${caller.scope}:${caller.subject}`
}
