import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'

/**
 * A connection of a cluster node to the Redis the nodes share. While Redis
 * is away, a command fails at the next failed reconnect attempt (ioredis
 * retries within 2 s) instead of after 20 of them: what the node sends then
 * does not pile up in memory, and what waits on it (a device's connection, a
 * shutdown) is not held for long. Its errors are logged as `redisDownLog` does.
 */
export function clusterRedis (url: string, log: Logger, what: string, opts: RedisOptions = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, ...opts })
  redis.on('error', redisDownLog(log, what))
  return redis
}

/**
 * Leaves Redis within `timeoutMs`, up or down. Connected, with QUIT (what
 * was sent before it is answered first). Otherwise, or when QUIT is not
 * answered in time, the connection is dropped: ioredis keeps a connection
 * that waits to reconnect in that state for good, with what is queued on it
 * and without the `end` that QUIT waits for, so QUIT alone would never
 * return while Redis is down.
 */
export async function endRedis (redis: Redis, timeoutMs = 1_000): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
    const quit = redis.quit().then(() => true, () => false)
    const quitted = await Promise.race([quit, late])
    clearTimeout(timer)
    if (quitted) return
  }
  redis.disconnect()
}

/**
 * An `error` listener for a Redis connection that logs one warning when
 * Redis goes away and then one a minute while it stays away, not one per
 * reconnect attempt of each connection (ioredis retries within milliseconds).
 */
export function redisDownLog (log: Logger, what: string): (err: Error) => void {
  return warnEveryMinute(log, `Redis is unreachable (${what}); reconnecting`)
}

/** Logs `msg` with the first error, then with at most one error a minute: for what fails with every message while Redis is away. */
export function warnEveryMinute (log: Logger, msg: string): (err: Error) => void {
  let lastMs = -Infinity
  return (err) => {
    const now = Date.now()
    if (now - lastMs < 60_000) return
    lastMs = now
    log.warn({ err: err.message }, msg)
  }
}

/**
 * Runs `onRejoin` each time the subscriber connection `sub` is back after
 * losing Redis, once its subscriptions to `channels` are confirmed again:
 * from then on what the other nodes publish is heard, and what they forgot
 * of this node (their liveness may have taken it for dead) or this node
 * missed can be said again. Returns a function that stops watching.
 */
export function rejoinAfterOutage (sub: Redis, channels: string[], log: Logger, what: string, onRejoin: () => Promise<void>): () => void {
  let lost = false
  const onClose = () => { lost = true }
  const onReady = () => {
    if (!lost) return
    lost = false
    // ioredis subscribes again by itself; subscribing here as well resolves once Redis has confirmed it.
    sub.subscribe(...channels).then(onRejoin).then(
      () => log.info(`back on Redis (${what}): told the other nodes again`),
      (err: Error) => log.warn({ err: err.message }, `back on Redis (${what}), but could not tell the other nodes again`),
    )
  }
  sub.on('close', onClose)
  sub.on('ready', onReady)
  return () => {
    sub.off('close', onClose)
    sub.off('ready', onReady)
  }
}
