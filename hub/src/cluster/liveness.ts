import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import { clusterRedis, endRedis } from '@trellis/broker'
import type { Logger } from 'pino'

export interface LivenessOptions {
  /** A node not heard for this long, in ms, is dead: its devices go offline on the others. Default 5000. */
  ttlMs?: number
}

/**
 * Which nodes of a cluster live: each keeps a key `trellis:node:<id>` with a
 * time to live, renewed three times per `ttlMs`, and checks the keys of the
 * nodes `watched()` names (those said to hold devices). A missing key is a
 * dead node: `gone` is emitted with its id, once.
 */
export class NodeLiveness extends EventEmitter {
  private readonly redis: Redis
  private readonly ttlMs: number
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private readonly key = (node: string) => `trellis:node:${node}`

  constructor (redisUrl: string, readonly node: string, private readonly watched: () => Iterable<string>, private readonly log: Logger, opts: LivenessOptions = {}) {
    super()
    this.ttlMs = opts.ttlMs ?? 5000
    this.redis = clusterRedis(redisUrl, log, 'liveness')
  }

  /** Resolves once this node's key is set: from then on the others can tell it lives. */
  async start (): Promise<void> {
    await this.redis.set(this.key(this.node), '1', 'PX', this.ttlMs)
    this.timer = setTimeout(() => { void this.round() }, this.ttlMs / 3)
  }

  private async round (): Promise<void> {
    if (this.closed) return
    try {
      await this.redis.set(this.key(this.node), '1', 'PX', this.ttlMs)
      const others = [...new Set(this.watched())].filter((n) => n !== this.node)
      if (others.length > 0) {
        const alive = await this.redis.mget(...others.map(this.key))
        for (const [i, node] of others.entries()) {
          if (alive[i] !== null || this.closed) continue
          this.log.warn({ node }, 'a node of the cluster is gone: its devices are offline')
          this.emit('gone', node)
        }
      }
    } catch (err) {
      // Redis away: no node can be judged dead from here.
      this.log.debug({ err }, 'liveness round failed')
    }
    if (!this.closed) this.timer = setTimeout(() => { void this.round() }, this.ttlMs / 3)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    // With Redis down the key cannot be deleted: it expires within its time to live.
    if (this.redis.status === 'ready') await this.redis.del(this.key(this.node)).catch(() => {})
    await endRedis(this.redis)
  }
}
