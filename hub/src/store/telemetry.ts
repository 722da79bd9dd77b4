import { InfluxDB, escape, type IPoolOptions } from 'influx'
import type { Logger } from 'pino'
import type { CapabilityKind } from '@trellis/device-sdk'

export type Aggregate = 'mean' | 'min' | 'max' | 'last'

export interface TelemetryQuery {
  deviceId: string
  capability: string
  kind: CapabilityKind
  from: Date
  to: Date
  /** InfluxQL duration such as `1m`; with `agg`, one point per interval. */
  every?: string
  agg?: Aggregate
  /** Most points returned. */
  limit: number
}

export interface TelemetryPoint { ts: string, value: number | boolean | string | null }

type PoolBackoff = NonNullable<IPoolOptions['backoff']>
/**
 * The `influx` pool takes a host out of service after one failed request and
 * answers "No host available" until a growing backoff passes. With a single
 * host there is nothing to fail over to, so every query tries it instead.
 */
const neverSideline: PoolBackoff = { getDelay: () => 0, next: () => neverSideline, reset: () => neverSideline }

/** Reads history and manages the schema; writes go through PointWriter. */
export class TelemetryStore {
  readonly influx: InfluxDB
  constructor (url: string, readonly database = 'trellis') {
    const u = new URL(url)
    this.influx = new InfluxDB({
      host: u.hostname,
      port: Number(u.port || 8086),
      protocol: u.protocol === 'https:' ? 'https' : 'http',
      database,
      pool: { backoff: neverSideline, maxRetries: 0 },
      ...(u.username && { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }),
    })
  }

  /** Creates the database when missing; safe to call on every start. */
  async ensureSchema (): Promise<void> {
    await this.influx.createDatabase(this.database)
  }

  /**
   * Creates the database now or, when InfluxDB cannot be reached at start,
   * keeps trying in the background (backoff up to `maxDelayMs`, default
   * 10000) while writes go to the spool. Returns a function that stops trying.
   */
  async ensureSchemaEventually (log: Logger, maxDelayMs = 10_000): Promise<() => void> {
    try {
      await this.ensureSchema()
      return () => {}
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'InfluxDB is not reachable at start; readings are spooled until it is')
    }
    let timer: NodeJS.Timeout | undefined
    let stopped = false
    const attempt = (n: number) => {
      timer = setTimeout(() => {
        this.ensureSchema().then(() => log.info('InfluxDB reachable; database ready'), () => { if (!stopped) attempt(n + 1) })
      }, Math.min(maxDelayMs, 250 * 2 ** n) * (0.5 + Math.random()))
      timer.unref()
    }
    attempt(0)
    return () => { stopped = true; clearTimeout(timer) }
  }

  async ping (timeoutMs = 1000): Promise<boolean> {
    const hosts = await this.influx.ping(timeoutMs)
    return hosts.some((h) => h.online)
  }

  async history (q: TelemetryQuery): Promise<TelemetryPoint[]> {
    const where = `"device" = ${escape.stringLit(q.deviceId)} AND time >= ${q.from.getTime()}ms AND time <= ${q.to.getTime()}ms`
    const measurement = escape.measurement(q.capability)
    const text = q.agg && q.every
      ? `SELECT ${q.agg}("value") AS "value" FROM ${measurement} WHERE ${where} GROUP BY time(${q.every}) fill(none) LIMIT ${q.limit}`
      : `SELECT "value" FROM ${measurement} WHERE ${where} ORDER BY time ASC LIMIT ${q.limit}`
    const rows = await this.influx.query<{ time: Date, value: number | boolean | string | null }>(text, { precision: 'ms' as never })
    return rows.map((r) => ({ ts: r.time.toISOString(), value: r.value }))
  }

  /** Counts stored points of one capability for one device (tests and benchmarks). */
  async count (capability: string, deviceId?: string): Promise<number> {
    const where = deviceId ? ` WHERE "device" = ${escape.stringLit(deviceId)}` : ''
    const rows = await this.influx.query<{ count: number }>(`SELECT count("value") AS "count" FROM ${escape.measurement(capability)}${where}`)
    return rows[0]?.count ?? 0
  }
}
