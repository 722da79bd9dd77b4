import { InfluxHttp, influxMessage, type InfluxConnection } from './influx-http.js'

/** A point InfluxDB (or the cardinality guard) refused, with the reason it gave. */
export interface Rejection {
  line: string
  reason: string
}

/** What became of the lines of one write: how many were stored, and which were refused. */
export interface StoreOutcome {
  written: number
  rejections: Rejection[]
}

/**
 * Writes line protocol to InfluxDB's `/write`. A 4xx about the points names no
 * line, so the lines are split in halves until each refusal is pinned to its
 * line: only those are rejected, with InfluxDB's reason, and none is retried.
 * Any other failure (no answer, 5xx, 401/403, 404) throws an
 * `InfluxRequestError`: the points are fine, the server or its configuration
 * is not.
 */
export class LineWriter {
  private readonly http: InfluxHttp
  private readonly writePath: string

  constructor (conn: InfluxConnection, database: string, timeoutMs?: number) {
    this.http = new InfluxHttp(conn, timeoutMs)
    this.writePath = `/write?db=${encodeURIComponent(database)}&precision=ms`
  }

  /** Stores lines. Resending a part InfluxDB already stored is harmless: every line has its own timestamp. */
  async store (lines: string[]): Promise<StoreOutcome> {
    const res = await this.http.post(this.writePath, lines.join('\n'))
    if (res.status === 204) return { written: lines.length, rejections: [] }
    if (res.status === 400 || res.status === 413 || res.status === 422) {
      const reason = influxMessage(res.text) ?? `HTTP ${res.status}`
      if (lines.length === 1) return { written: 0, rejections: [{ line: lines[0], reason }] }
      const mid = lines.length >>> 1
      const head = await this.store(lines.slice(0, mid))
      const tail = await this.store(lines.slice(mid))
      return { written: head.written + tail.written, rejections: head.rejections.concat(tail.rejections) }
    }
    throw this.http.failure('POST', this.writePath, res)
  }

  close (): void {
    this.http.close()
  }
}
