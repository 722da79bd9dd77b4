import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import { clusterRedis, endRedis } from '@trellis/broker'
import type { Logger } from 'pino'

export interface LeaderOptions {
  /** The lock's key. Default `trellis:leader`. */
  key?: string
  /** How long the lock lasts unless renewed, in ms: a dead leader is replaced within this. Default 5000. */
  ttlMs?: number
  /** How often the leader renews and the others try to take it, in ms. Default ttlMs / 5. */
  renewMs?: number
}

// Renews only if this node still holds the lock: another may have taken it after it expired.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

/**
 * Which node of a cluster runs the once-per-cluster duties (schedules): the
 * holder of a Redis lock with a time to live, renewed while it lives. Fencing:
 * a node stops counting itself leader as soon as a renewal fails or is late
 * (before the lock can have expired), so two nodes never both act for longer
 * than one renewal's round trip; each term has a number (`term`) from a
 * counter in Redis. Emits `elected` and `deposed`.
 */
export class LeaderElection extends EventEmitter {
  private readonly redis: Redis
  private readonly key: string
  private readonly ttlMs: number
  private readonly renewMs: number
  private timer: NodeJS.Timeout | null = null
  /** Until when this node may act as leader (the lock cannot have expired before). */
  private validUntil = 0
  private closed = false
  /** The term of this node's leadership; 0 when it is not the leader. */
  term = 0

  constructor (redisUrl: string, readonly node: string, private readonly log: Logger, opts: LeaderOptions = {}) {
    super()
    this.key = opts.key ?? 'trellis:leader'
    this.ttlMs = opts.ttlMs ?? 5000
    this.renewMs = opts.renewMs ?? Math.max(100, Math.floor(this.ttlMs / 5))
    this.redis = clusterRedis(redisUrl, log, 'leader election')
  }

  /** True while this node holds the lock and may act for the cluster. */
  get isLeader (): boolean {
    return this.term > 0 && Date.now() < this.validUntil
  }

  start (): void {
    void this.round()
  }

  private async round (): Promise<void> {
    if (this.closed) return
    const started = Date.now()
    try {
      if (this.term > 0) {
        const renewed = await this.redis.eval(RENEW, 1, this.key, this.node, String(this.ttlMs)) as number
        if (renewed === 1) this.validUntil = started + this.ttlMs - this.renewMs
        else this.depose('the lock was lost')
      } else {
        const taken = await this.redis.set(this.key, this.node, 'PX', this.ttlMs, 'NX')
        if (taken === 'OK' && !this.closed) {
          this.validUntil = started + this.ttlMs - this.renewMs
          this.term = await this.redis.incr(`${this.key}:term`)
          this.log.info({ term: this.term }, 'this node leads the cluster')
          this.emit('elected', this.term)
        }
      }
    } catch (err) {
      if (this.term > 0) this.depose(`Redis did not answer: ${(err as Error).message}`)
    }
    if (this.term > 0 && Date.now() >= this.validUntil) this.depose('the lock could not be renewed in time')
    if (!this.closed) this.timer = setTimeout(() => { void this.round() }, this.renewMs)
  }

  private depose (reason: string): void {
    if (this.term === 0) return
    this.log.warn({ term: this.term, reason }, 'this node no longer leads the cluster')
    this.term = 0
    this.validUntil = 0
    this.emit('deposed')
  }

  /** Stops, and hands the lock over at once if this node holds it. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    // With Redis down the lock cannot be released: it expires within its time to live.
    if (this.term > 0 && this.redis.status === 'ready') await this.redis.eval(RELEASE, 1, this.key, this.node).catch(() => {})
    this.term = 0
    await endRedis(this.redis)
  }
}
