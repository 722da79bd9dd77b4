import { createRequire } from 'node:module'
import { Redis } from 'ioredis'

// Both packages are CommonJS without ESM entry points.
const require = createRequire(import.meta.url)
const mqemitterRedis = require('mqemitter-redis') as (opts: { connectionString: string }) => SharedEmitter
const persistenceRedis = require('aedes-persistence-redis') as (opts: { conn: Redis }) => SharedPersistence

interface SharedEmitter { close (cb: () => void): void }
type SharedPersistence = object

/** aedes' emitter and persistence on one Redis, shared by every broker of a cluster. */
export interface SharedBackends {
  readonly mq: SharedEmitter
  readonly persistence: SharedPersistence
  /** Ends the persistence's connection, after aedes closed (it closes the emitter itself). */
  close (): Promise<void>
}

export function sharedBackends (redisUrl: string): SharedBackends {
  const mq = mqemitterRedis({ connectionString: redisUrl })
  const conn = new Redis(redisUrl)
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
