/** A token bucket's shape: it holds `burst` tokens and gains `perSecond` of them each second. */
export interface Rate {
  /** Tokens gained per second. */
  perSecond: number
  /** Most tokens held at once: how much can be spent in one go after a quiet spell. */
  burst: number
}

interface Bucket { tokens: number, updated: number }

/**
 * Token buckets by key (a device id, a remote address), bounded in number so a
 * flood of distinct keys cannot grow memory: past `maxKeys` the least recently
 * touched bucket is forgotten, which only ever makes a forgotten key start full.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>()

  constructor (
    readonly rate: Rate,
    /** Most keys remembered. Default 10000. */
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends `cost` tokens of `key`'s bucket; false (and nothing spent) when it has too few. */
  take (key: string, cost = 1): boolean {
    const bucket = this.refill(key)
    if (bucket.tokens < cost) return false
    bucket.tokens -= cost
    return true
  }

  /** True when `key` could spend `cost` now, without spending it. */
  has (key: string, cost = 1): boolean {
    const bucket = this.buckets.get(key)
    if (!bucket) return this.rate.burst >= cost
    const elapsed = Math.max(0, this.now() - bucket.updated) / 1000
    return Math.min(this.rate.burst, bucket.tokens + elapsed * this.rate.perSecond) >= cost
  }

  forget (key: string): void { this.buckets.delete(key) }

  get size (): number { return this.buckets.size }

  private refill (key: string): Bucket {
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket) {
      // Re-inserting keeps the map in least-recently-used order for eviction.
      this.buckets.delete(key)
      const elapsed = Math.max(0, now - bucket.updated) / 1000
      bucket.tokens = Math.min(this.rate.burst, bucket.tokens + elapsed * this.rate.perSecond)
      bucket.updated = now
    } else {
      bucket = { tokens: this.rate.burst, updated: now }
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!)
    }
    this.buckets.set(key, bucket)
    return bucket
  }
}
