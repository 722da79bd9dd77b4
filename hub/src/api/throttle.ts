import { KeyedBuckets, type Rate } from '@trellis/broker'
import { errors } from './errors.js'

/** Rate limits on the routes an attacker would hammer, each with the keys it counts by. */
export interface ApiRateLimits {
  /** Sign-ups (makers and owners) per address. Default 1/s, burst 100. */
  signup?: Rate
  /** Sign-ups from everyone together. Default 1/s, burst 60 (60 a minute). */
  signupTotal?: Rate
  /**
   * Failed logins per address and account together: a stranger's failures
   * count against their own address, never lock the owner out elsewhere. Default 0.1/s, burst 10.
   */
  failedLogin?: Rate
  /** Failed logins per address, whatever the account. Default 0.2/s, burst 30. */
  failedLoginPerAddress?: Rate
  /**
   * Failed claims per address and per owner. Claim codes carry 80 bits, so
   * at this pace guessing one is hopeless. Default 0.1/s, burst 10.
   */
  failedClaim?: Rate
  /** History queries (telemetry, presence) per token: each one loads InfluxDB. Default 5/s, burst 20. */
  history?: Rate
  /**
   * Authenticated requests per account (maker or owner), whatever the route:
   * one account cannot keep the hub busy for everyone else, however cheap
   * each request (the platform admin is not counted). Default 50/s, burst 200.
   */
  request?: Rate
  /**
   * Model and mapping writes per maker: declaring a model, replacing a
   * mapping, dry-running a candidate mapping. Each may carry a mapping of up
   * to 64 KiB that the hub validates (and, for a dry run, compiles) on its
   * thread, so they are bounded apart from cheaper requests; checked before
   * the mapping is looked at. Default 2/s, burst 20.
   */
  modelWrite?: Rate
}

type Kind = keyof ApiRateLimits
export type ThrottleKind = Kind
const what: Record<Kind, string> = {
  signup: 'sign-ups from this address',
  signupTotal: 'sign-ups on this hub just now',
  failedLogin: 'failed logins',
  failedLoginPerAddress: 'failed logins from this address',
  failedClaim: 'failed claims',
  history: 'history queries with this token',
  request: 'requests from this account',
  modelWrite: 'model and mapping writes from this maker',
}
/** Each limit's default, as docs/security.md lists them. */
export const defaultRateLimits: Readonly<Record<Kind, Rate>> = {
  signup: { perSecond: 1, burst: 100 },
  signupTotal: { perSecond: 1, burst: 60 },
  failedLogin: { perSecond: 0.1, burst: 10 },
  failedLoginPerAddress: { perSecond: 0.2, burst: 30 },
  failedClaim: { perSecond: 0.1, burst: 10 },
  history: { perSecond: 5, burst: 20 },
  request: { perSecond: 50, burst: 200 },
  modelWrite: { perSecond: 2, burst: 20 },
}

/** Token buckets keyed by address, account or token; once one is empty, the action is refused unchecked. */
export class RequestThrottle {
  private readonly buckets: Record<Kind, KeyedBuckets>

  /**
   * `onSpend`: told of every spend, so a cluster can apply it on the other
   * nodes (`applySpent`) and a budget is one across the cluster. Default none.
   */
  constructor (limits: ApiRateLimits = {}, private readonly onSpend?: (kind: Kind, keys: string[]) => void | Promise<void>) {
    this.buckets = Object.fromEntries((Object.keys(defaultRateLimits) as Kind[]).map((k) => [k, new KeyedBuckets(limits[k] ?? defaultRateLimits[k])])) as Record<Kind, KeyedBuckets>
  }

  /** Throws 429 when any of `keys` has used up its budget of `kind`. */
  check (kind: Kind, keys: string[]): void {
    const buckets = this.buckets[kind]
    if (keys.every((k) => buckets.has(k))) return
    throw errors.rateLimited(what[kind], Math.max(1, Math.ceil(1 / buckets.rate.perSecond)))
  }

  /** Spends one of `kind` for each key; resolves once `onSpend` has told the other nodes (at once without it). */
  async spend (kind: Kind, keys: string[]): Promise<void> {
    this.applySpent(kind, keys)
    await this.onSpend?.(kind, keys)
  }

  /** Spends as another node of the cluster did. */
  applySpent (kind: Kind, keys: string[]): void {
    const buckets = this.buckets[kind]
    if (!buckets) return
    for (const k of keys) buckets.take(k)
  }

  /** `check` then `spend`, for limits that count every attempt. */
  take (kind: Kind, keys: string[]): void {
    this.check(kind, keys)
    void this.spend(kind, keys)
  }
}
