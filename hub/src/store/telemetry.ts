import type { Logger } from 'pino'
import type { CapabilityKind } from '@trellis/device-sdk'
import { InfluxHttp, InfluxRequestError, influxMessage, type InfluxConnection } from './influx-http.js'

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

/** A query the caller got wrong (a window InfluxDB cannot hold, or one it refuses as a 4xx): answer 400 with the reason. */
export class QueryRefused extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'QueryRefused'
  }
}

/**
 * The times InfluxDB can hold: a signed 64-bit count of nanoseconds, 1677-09-21
 * to 2262-04-11, less a day each side so that no rounding reaches the edge.
 */
export const earliestTime = new Date('1677-09-22T00:00:00Z')
export const latestTime = new Date('2262-04-10T00:00:00Z')

type Row = Record<string, unknown> & { time: Date }

/** Reads history and manages the schema through InfluxDB's v1 `/query`; writes go through PointWriter. */
export class TelemetryStore {
  private readonly http: InfluxHttp

  /** `conn` is the InfluxDB URL, or the URL with a token and CA certificates. */
  constructor (conn: string | InfluxConnection, readonly database = 'trellis') {
    this.http = new InfluxHttp(typeof conn === 'string' ? { url: conn } : conn)
  }

  /** Creates the database when missing; safe to call on every start. */
  async ensureSchema (): Promise<void> {
    await this.statement(`CREATE DATABASE ${quoteIdentifier(this.database)}`)
  }

  /**
   * Creates the database now or, when InfluxDB cannot be reached at start,
   * keeps trying in the background (backoff up to `maxDelayMs`, default
   * 10000) while writes go to the spool. Returns a function that stops trying.
   * A refused CREATE DATABASE (401/403: a user without admin rights, or an
   * InfluxDB 2.x/3.x token) is logged once and the hub goes on, assuming the
   * database exists.
   */
  async ensureSchemaEventually (log: Logger, maxDelayMs = 10_000): Promise<() => void> {
    const refused = (err: unknown): boolean => {
      if (!(err instanceof InfluxRequestError && err.unauthorized)) return false
      log.error({ err: err.message, database: this.database },
        'InfluxDB refused CREATE DATABASE; going on, assuming the database exists (create it, or give the hub\'s user admin rights, if writes fail)')
      return true
    }
    try {
      await this.ensureSchema()
      return () => {}
    } catch (err) {
      if (refused(err)) return () => {}
      log.warn({ err: (err as Error).message }, 'InfluxDB is not reachable at start; readings are spooled until it is')
    }
    let timer: NodeJS.Timeout | undefined
    let stopped = false
    const attempt = (n: number) => {
      timer = setTimeout(() => {
        this.ensureSchema().then(() => log.info('InfluxDB reachable; database ready'), (err) => { if (!stopped && !refused(err)) attempt(n + 1) })
      }, Math.min(maxDelayMs, 250 * 2 ** n) * (0.5 + Math.random()))
      timer.unref()
    }
    attempt(0)
    return () => { stopped = true; clearTimeout(timer) }
  }

  async ping (timeoutMs = 1000): Promise<boolean> {
    const res = await this.http.get('/ping', timeoutMs)
    return res.status === 204
  }

  /**
   * Runs one InfluxQL read and returns its rows, `time` as a Date and the
   * tags of a GROUP BY as fields. Throws
   * `QueryRefused` when InfluxDB finds the query wrong (400), and an
   * `InfluxRequestError` (method, path, status, message; no credentials)
   * when it cannot answer.
   */
  async query<T extends object> (text: string): Promise<Array<T & { time: Date }>> {
    const path = `/query?db=${encodeURIComponent(this.database)}&epoch=ms&q=${encodeURIComponent(text)}`
    const res = await this.http.get(path)
    if (res.status === 400) throw new QueryRefused(`InfluxDB refused the query: ${influxMessage(res.text) ?? 'no reason given'}`)
    if (res.status !== 200) throw this.http.failure('GET', path, res)
    const body = JSON.parse(res.text) as { results?: Array<{ error?: string, series?: Array<{ tags?: Record<string, string>, columns: string[], values: unknown[][] }> }> }
    const result = body.results?.[0]
    if (result?.error) throw new InfluxRequestError(`InfluxDB could not run the query: ${influxMessage(JSON.stringify({ error: result.error }))}`, res.status)
    const rows: Row[] = []
    for (const series of result?.series ?? []) {
      for (const values of series.values) {
        // A GROUP BY tag's value comes with its series: each row carries it.
        const row: Record<string, unknown> = { ...series.tags }
        series.columns.forEach((c, i) => { row[c] = c === 'time' ? new Date(values[i] as number) : values[i] })
        rows.push(row as Row)
      }
    }
    return rows as Array<T & { time: Date }>
  }

  async history (q: TelemetryQuery): Promise<TelemetryPoint[]> {
    checkWindow(q.from, q.to)
    const where = `"device" = ${quoteString(q.deviceId)} AND time >= ${q.from.getTime()}ms AND time <= ${q.to.getTime()}ms`
    const measurement = quoteIdentifier(q.capability)
    const text = q.agg && q.every
      ? `SELECT ${q.agg}("value") AS "value" FROM ${measurement} WHERE ${where} GROUP BY time(${q.every}) fill(none) LIMIT ${q.limit}`
      : `SELECT "value" FROM ${measurement} WHERE ${where} ORDER BY time ASC LIMIT ${q.limit}`
    const rows = await this.query<{ value: number | boolean | string | null }>(text)
    return rows.map((r) => ({ ts: r.time.toISOString(), value: r.value }))
  }

  /** Counts stored points of one capability for one device (tests and benchmarks). */
  async count (capability: string, deviceId?: string): Promise<number> {
    const where = deviceId ? ` WHERE "device" = ${quoteString(deviceId)}` : ''
    const rows = await this.query<{ count: number }>(`SELECT count("value") AS "count" FROM ${quoteIdentifier(capability)}${where}`)
    return rows[0]?.count ?? 0
  }

  close (): void {
    this.http.close()
  }

  /** A statement that changes the schema (POST, as InfluxDB requires). */
  private async statement (text: string): Promise<void> {
    const path = `/query?q=${encodeURIComponent(text)}`
    const res = await this.http.post(path, '', 'application/x-www-form-urlencoded')
    if (res.status !== 200) throw this.http.failure('POST', path, res)
    const error = (JSON.parse(res.text) as { results?: Array<{ error?: string }> }).results?.[0]?.error
    if (error) throw new InfluxRequestError(`InfluxDB refused ${text.split(' ', 2).join(' ')}: ${influxMessage(JSON.stringify({ error }))}`, res.status)
  }
}

/** Refuses a window InfluxDB cannot hold, before it is asked. */
export function checkWindow (from: Date, to: Date): void {
  for (const [name, t] of [['from', from], ['to', to]] as const) {
    if (Number.isNaN(t.getTime()) || t < earliestTime || t > latestTime) {
      throw new QueryRefused(`${name} must be between ${earliestTime.toISOString()} and ${latestTime.toISOString()}, InfluxDB's range`)
    }
  }
}

/** An InfluxQL string literal. */
export function quoteString (s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

/** An InfluxQL double-quoted identifier. */
export function quoteIdentifier (s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}
