import http from 'node:http'
import { EventEmitter } from 'node:events'
import { pino, type Logger } from 'pino'
import { toLine, type Point } from './points.js'

export interface PointWriterOptions {
  /** InfluxDB base URL, e.g. http://127.0.0.1:8086. */
  url: string
  /** Database to write to. Default `trellis`. */
  database?: string
  /** Flush a batch once it holds this many points. Default 5000. */
  maxBatchPoints?: number
  /** Flush a non-empty batch after this many ms. Default 100. */
  flushIntervalMs?: number
  /** Write requests in flight at once. Default 2. */
  maxConcurrentWrites?: number
  /** Give up on one write request after this many ms. Default 10000. */
  requestTimeoutMs?: number
  /** Points held in memory (buffered and in flight) before new points are refused. Default 500000. */
  maxBufferedPoints?: number
  logger?: Logger
}

export type Durable = (err?: Error) => void

interface Batch {
  lines: string[]
  callbacks: Durable[]
  attempts: number
}

export interface WriterStats {
  written: number
  rejected: number
  failedRequests: number
  buffered: number
}

/**
 * Batches points and writes them to InfluxDB as line protocol with explicit
 * millisecond timestamps, so a retried batch can never duplicate points.
 * Each `write` callback fires once its points are durable (stored) or have
 * been finally refused by InfluxDB (a 4xx: retrying would not help).
 *
 * Events: `rejected` (lines: string[], reason: string) for points InfluxDB refused.
 */
export class PointWriter extends EventEmitter {
  readonly stats: WriterStats = { written: 0, rejected: 0, failedRequests: 0, buffered: 0 }
  private readonly host: string
  private readonly port: number
  private readonly writePath: string
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  private readonly maxBatch: number
  private readonly interval: number
  private readonly maxConcurrent: number
  private readonly timeoutMs: number
  private readonly maxBuffered: number
  private readonly log: Logger
  private current: Batch = { lines: [], callbacks: [], attempts: 0 }
  private readonly retryQueue: Batch[] = []
  private inFlight = 0
  /** Batches waiting out a retry delay. */
  private backingOff = 0
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private idleWaiters: Array<() => void> = []

  constructor (opts: PointWriterOptions) {
    super()
    const url = new URL(opts.url)
    this.host = url.hostname
    this.port = Number(url.port || 8086)
    const db = opts.database ?? 'trellis'
    this.writePath = `${url.pathname.replace(/\/$/, '')}/write?db=${encodeURIComponent(db)}&precision=ms`
    this.maxBatch = opts.maxBatchPoints ?? 5000
    this.interval = opts.flushIntervalMs ?? 100
    this.maxConcurrent = opts.maxConcurrentWrites ?? 2
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000
    this.maxBuffered = opts.maxBufferedPoints ?? 500_000
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'writer' })
  }

  /**
   * Queues points; `done` fires when they are stored. Returns false (and
   * calls `done` with an error) when the writer is full or closed.
   */
  write (points: readonly Point[], done?: Durable): boolean {
    if (this.closed) {
      done?.(new Error('the point writer is closed'))
      return false
    }
    if (this.stats.buffered + points.length > this.maxBuffered) {
      done?.(new Error(`the point writer holds ${this.stats.buffered} points, its limit`))
      return false
    }
    const batch = this.current
    for (const p of points) batch.lines.push(toLine(p))
    if (done) batch.callbacks.push(done)
    this.stats.buffered += points.length
    if (batch.lines.length >= this.maxBatch) this.flush()
    else if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.interval)
    return true
  }

  /** Sends what is batched now, if a request slot is free. */
  flush (): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    while (this.inFlight < this.maxConcurrent) {
      const batch = this.retryQueue.shift() ?? this.takeCurrent()
      if (!batch) break
      this.send(batch)
    }
  }

  /** Resolves once everything queued so far has been written or finally refused. */
  async drain (): Promise<void> {
    this.flush()
    if (this.isIdle()) return
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve))
  }

  async close (): Promise<void> {
    await this.drain()
    this.closed = true
    this.agent.destroy()
  }

  private isIdle (): boolean {
    return this.inFlight === 0 && this.backingOff === 0 && this.retryQueue.length === 0 && this.current.lines.length === 0
  }

  private takeCurrent (): Batch | null {
    if (this.current.lines.length === 0) return null
    const batch = this.current
    this.current = { lines: [], callbacks: [], attempts: 0 }
    return batch
  }

  private send (batch: Batch): void {
    this.inFlight++
    batch.attempts++
    const body = batch.lines.join('\n')
    const req = http.request({
      host: this.host,
      port: this.port,
      path: this.writePath,
      method: 'POST',
      agent: this.agent,
      timeout: this.timeoutMs,
      headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => this.settle(batch, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')))
      res.on('error', (err) => this.retry(batch, err))
    })
    req.on('timeout', () => req.destroy(new Error(`write timed out after ${this.timeoutMs} ms`)))
    req.on('error', (err) => this.retry(batch, err))
    req.end(body)
  }

  private settle (batch: Batch, status: number, text: string): void {
    if (status === 204) return this.finish(batch, batch.lines.length, 0)
    if (status >= 400 && status < 500) {
      // InfluxDB stored what it could (a partial write) or refused the batch: retrying cannot help.
      const reason = parseInfluxError(text) ?? `HTTP ${status}`
      const dropped = /dropped=(\d+)/.exec(reason)
      const rejected = dropped ? Math.min(Number(dropped[1]), batch.lines.length) : batch.lines.length
      this.log.warn({ status, reason, points: batch.lines.length, rejected }, 'InfluxDB refused points')
      this.emit('rejected', batch.lines, reason)
      return this.finish(batch, batch.lines.length - rejected, rejected)
    }
    this.retry(batch, new Error(`InfluxDB answered ${status}: ${parseInfluxError(text) ?? text.slice(0, 200)}`))
  }

  private finish (batch: Batch, written: number, rejected: number): void {
    this.inFlight--
    this.stats.written += written
    this.stats.rejected += rejected
    this.stats.buffered -= batch.lines.length
    for (const cb of batch.callbacks) cb()
    this.afterRequest()
  }

  private retry (batch: Batch, err: Error): void {
    this.inFlight--
    this.stats.failedRequests++
    const delay = Math.min(10_000, 100 * 2 ** Math.min(batch.attempts, 7)) * (0.5 + Math.random())
    this.log.warn({ err: err.message, attempts: batch.attempts, points: batch.lines.length, retryInMs: Math.round(delay) }, 'write failed; will retry')
    this.backingOff++
    setTimeout(() => {
      this.backingOff--
      this.retryQueue.push(batch)
      this.flush()
    }, delay).unref()
    this.afterRequest()
  }

  private afterRequest (): void {
    if (this.current.lines.length >= this.maxBatch || this.retryQueue.length > 0) this.flush()
    else if (this.current.lines.length > 0 && !this.timer) this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.interval)
    if (this.isIdle() && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }
}

function parseInfluxError (text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: string }
    return body.error ?? null
  } catch {
    return text ? text.slice(0, 500) : null
  }
}
