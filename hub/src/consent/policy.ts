import type { Scope } from '../registry/records.js'
import type { DeviceContext } from '../registry/directory.js'
import type { Grant, GrantStore, Resolution } from './grant-store.js'
import { isHealthCapability } from './health.js'

/** How a caller may read one capability of one device, and under which grant (null: by right, not by grant). */
export interface ReadAccess { resolution: Resolution, grant: Grant | null }

/** Who reads: an API caller's scope and account (the API's `Caller` fits). */
export interface Reader { scope: Scope, subject: string }

const raw: ReadAccess = { resolution: 'raw', grant: null }

/**
 * Who may read what of a device. The owner reads everything; the maker reads
 * everything of a device in its stock (unclaimed) and the health capabilities
 * of a claimed one; beyond that a maker, and an app always, reads only what a
 * live grant of the device's current owner names, at the grant's resolution.
 * Without a grant store (an API built without consent), no grant exists.
 */
export class ConsentPolicy {
  constructor (private readonly grants: GrantStore | null) {}

  /** Capability → access, for every capability of the device's model the caller may read; empty when none. */
  async readable (caller: Reader, ctx: DeviceContext, now = Date.now()): Promise<Map<string, ReadAccess>> {
    const out = new Map<string, ReadAccess>()
    const caps = [...ctx.model.capabilities.keys()]
    if (caller.scope === 'owner') {
      if (ctx.ownerId === caller.subject) for (const c of caps) out.set(c, raw)
      return out
    }
    if (caller.scope === 'maker') {
      if (ctx.makerId !== caller.subject) return out
      for (const c of caps) if (ctx.ownerId === null || isHealthCapability(c)) out.set(c, raw)
      if (ctx.ownerId === null) return out
    } else if (caller.scope !== 'app') {
      return out
    }
    if (!this.grants || ctx.ownerId === null) return out
    for (const g of await this.grants.heldBy(caller.scope, caller.subject)) {
      // A grant is its giver's: once the device changes hands it covers nothing.
      if (g.ownerId !== ctx.ownerId || g.revokedAt !== null || g.expiresAt <= now || !g.devices.includes(ctx.id)) continue
      for (const c of g.capabilities) {
        if (!ctx.model.capabilities.has(c as never)) continue
        const had = out.get(c)
        if (!had || (had.resolution === 'hourly' && g.resolution === 'raw')) out.set(c, { resolution: g.resolution, grant: g })
      }
    }
    return out
  }

  /** Whether an app holds any live grant on the device (what lets it see the device at all). */
  async appMaySee (appId: string, ctx: DeviceContext, now = Date.now()): Promise<boolean> {
    if (!this.grants || ctx.ownerId === null) return false
    return (await this.grants.heldBy('app', appId)).some((g) => g.ownerId === ctx.ownerId && g.revokedAt === null && g.expiresAt > now && g.devices.includes(ctx.id))
  }
}
