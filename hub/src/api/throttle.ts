import { KeyedBuckets, type Rate } from '@trellis/broker'
import { errors } from './errors.js'

/** Rate limits on the routes an attacker would hammer. Each counts per remote address and per account. */
export interface ApiRateLimits {
  /** Sign-ups (makers and owners) per address. Default 1/s, burst 100. */
  signup?: Rate
  /** Failed logins per address and per email. Default 0.1/s, burst 10. */
  failedLogin?: Rate
  /**
   * Failed claims per address and per owner. Claim codes carry 80 bits, so
   * at this pace guessing one is hopeless. Default 0.1/s, burst 10.
   */
  failedClaim?: Rate
}

type Kind = keyof ApiRateLimits
const what: Record<Kind, string> = { signup: 'sign-ups', failedLogin: 'failed logins', failedClaim: 'failed claims' }

/** Token buckets keyed by address or account; once one is empty, the action is refused unchecked. */
export class RequestThrottle {
  private readonly buckets: Record<Kind, KeyedBuckets>

  constructor (limits: ApiRateLimits = {}) {
    this.buckets = {
      signup: new KeyedBuckets(limits.signup ?? { perSecond: 1, burst: 100 }),
      failedLogin: new KeyedBuckets(limits.failedLogin ?? { perSecond: 0.1, burst: 10 }),
      failedClaim: new KeyedBuckets(limits.failedClaim ?? { perSecond: 0.1, burst: 10 }),
    }
  }

  /** Throws 429 when any of `keys` has used up its budget of `kind`. */
  check (kind: Kind, keys: string[]): void {
    const buckets = this.buckets[kind]
    if (keys.every((k) => buckets.has(k))) return
    throw errors.rateLimited(what[kind], Math.max(1, Math.ceil(1 / buckets.rate.perSecond)))
  }

  /** Spends one of `kind` for each key. */
  spend (kind: Kind, keys: string[]): void {
    for (const k of keys) this.buckets[kind].take(k)
  }

  /** `check` then `spend`, for limits that count every attempt. */
  take (kind: Kind, keys: string[]): void {
    this.check(kind, keys)
    this.spend(kind, keys)
  }
}
