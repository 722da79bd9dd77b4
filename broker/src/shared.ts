import { createRequire } from 'node:module'
import type { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { clusterRedis, endRedis } from './redis.js'

// Both packages are CommonJS without ESM entry points.
const require = createRequire(import.meta.url)
const mqemitterRedis = require('mqemitter-redis') as (opts: { pubConn: Redis, subConn: Redis }) => SharedEmitter
const persistenceRedis = require('aedes-persistence-redis') as (opts: { conn: Redis }) => SharedPersistence

interface SharedEmitter {
  close (cb: () => void): void
  /** MQEmitter's own close, which mqemitter-redis's calls once both connections ended. */
  _close (cb: () => void): void
  /** Set while closing: mqemitter-redis then keeps its connections' errors to itself. */
  closing: boolean
  readonly pubConn: Redis
  readonly subConn: Redis
  /** Where mqemitter-redis re-emits its connections' errors: a plain emitter, so an unheard `error` throws. */
  readonly state: EventEmitter
}
type SharedPersistence = object

/** aedes' emitter and persistence on one Redis, shared by every broker of a cluster. */
export interface SharedBackends {
  readonly mq: SharedEmitter
  readonly persistence: SharedPersistence
  /** Ends the persistence's connection, after aedes closed (it closes the emitter itself). */
  close (): Promise<void>
}

export function sharedBackends (redisUrl: string, log: Logger): SharedBackends {
  const mq = mqemitterRedis({
    // Pipelined, as mqemitter-redis makes its own.
    pubConn: clusterRedis(redisUrl, log, 'MQTT deliveries, publishing', { enableAutoPipelining: true }),
    subConn: clusterRedis(redisUrl, log, 'MQTT deliveries, subscribed'),
  })
  // mqemitter-redis also re-emits its connections' errors here, on a plain emitter: unheard,
  // the first failed reconnect attempt would take the whole node down. The connections log them.
  mq.state.on('error', () => {})
  // mqemitter-redis closes with QUIT on both connections and waits for their `end`, which
  // ioredis never emits for a connection waiting to reconnect: with Redis down, aedes.close()
  // (which closes the emitter) would not return.
  mq.close = (cb) => {
    mq.closing = true
    void Promise.all([endRedis(mq.pubConn), endRedis(mq.subConn)]).then(() => mq._close(cb))
  }
  const conn = clusterRedis(redisUrl, log, 'MQTT sessions')
  // aedes-persistence-redis sends some commands without awaiting them (LREM and RPUSH on the
  // list of wills): with Redis away their rejections went unhandled and ended the process. They
  // are marked handled here; whoever awaits one still gets its error.
  for (const command of ['lrem', 'rpush'] as const) {
    const send = conn[command].bind(conn) as (...args: unknown[]) => Promise<unknown>
    ;(conn as unknown as Record<string, unknown>)[command] = (...args: unknown[]) => {
      const reply = send(...args)
      reply.catch(() => {})
      return reply
    }
  }
  const persistence = persistenceRedis({ conn })
  return {
    mq,
    persistence,
    async close () {
      // Not persistence.destroy(): it unsubscribes through aedes' emitter, which aedes.close() has closed, and never returns.
      conn.disconnect()
    },
  }
}
