import type { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { InfluxRequestError } from './influx-http.js'

/**
 * Whether InfluxDB takes the hub's writes, as the writes find out: reachable
 * or not, and whether it refuses the credentials, a configuration error that
 * no retry fixes. Emits on `events` (the point writer): `degraded` (err),
 * `unauthorized` (err) and `recovered`.
 */
export class WriteHealth {
  /** InfluxDB's last answer to a write was a failure. */
  degraded = false
  /** Why InfluxDB refuses the credentials (401/403), until a write succeeds; otherwise null. */
  configError: string | null = null

  constructor (private readonly events: EventEmitter, private readonly log: Logger, private readonly spooling: boolean) {}

  failed (err: Error): void {
    if (err instanceof InfluxRequestError && err.unauthorized && this.configError !== err.message) {
      // Said once, loudly, as what it is: retrying will not fix credentials.
      this.configError = err.message
      this.log.error({ err: err.message }, 'InfluxDB refuses this hub\'s credentials (check INFLUX_URL\'s user:password or INFLUX_TOKEN); points are spooled or kept in memory until it accepts them')
      this.events.emit('unauthorized', err)
    }
    if (this.degraded) return
    this.degraded = true
    this.log.warn({ err: err.message, spooling: this.spooling }, 'InfluxDB is not taking writes')
    this.events.emit('degraded', err)
  }

  /** A write succeeded; true when that ends an outage. */
  succeeded (spooledPoints: number): boolean {
    this.configError = null
    if (!this.degraded) return false
    this.degraded = false
    this.log.info({ spooled: spooledPoints }, 'InfluxDB takes writes again')
    this.events.emit('recovered')
    return true
  }
}
