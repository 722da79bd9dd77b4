import http from 'node:http'
import { EventEmitter } from 'node:events'
import { pino, type Logger } from 'pino'
import type { ReadingValue } from '@trellis/device-sdk'
import { lineOf, toLine, type Point, type Series } from './points.js'
import { SeriesGuard, type SeriesGuardOptions } from './cardinality.js'
import type { Spool, SpoolDepth } from './spool.js'

export interface PointWriterOptions {
  /** InfluxDB base URL, e.g. http://127.0.0.1:8086. */
  url: string
  /** Database to write to. Default `trellis`. */
  database?: string
  /** Flush a batch once it holds this many points. Default 5000. */
  maxBatchPoints?: number
  /**
   * Flush a non-empty batch after this many ms. Default 25: a device's PUBACK
   * waits for its batch, so this is the latency added to every acknowledged
   * publish (a device awaiting each report sends at most 1000/25 a second).
   */
  flushIntervalMs?: number
  /** Write requests in flight at once (replay of the spool takes one more). Default 2. */
  maxConcurrentWrites?: number
  /** Give up on one write request after this many ms. Default 10000. */
  requestTimeoutMs?: number
  /**
   * Points held in memory (batched, in flight, waiting to retry). Beyond it
   * new points go to the spool, or are refused when there is none or it is
   * full. Default 100000 (some 20 MB).
   */
  maxBufferedPoints?: number
  /**
   * A batch that has waited this long for a free write slot (InfluxDB is
   * slow) goes to the spool instead, so devices' acknowledgements are not
   * held behind a slow server. Used with a spool. Default 1000.
   */
  maxBatchWaitMs?: number
  /** Where points go when InfluxDB cannot take them. Default none: they wait in memory, retried. */
  spool?: Spool
  /** Longest pause between attempts to replay the spool while InfluxDB is down, in ms. Default 10000. */
  maxRetryDelayMs?: number
  /** Per-maker tag cardinality guard. */
  cardinality?: SeriesGuardOptions
  logger?: Logger
}

/** Called once a write's points are durable (stored or spooled) or finally refused; with an error when they are neither. */
export type Durable = (err?: Error) => void

interface Batch {
  lines: string[]
  callbacks: Durable[]
  attempts: number
  /** Callbacks have fired (written, spooled or given up at close). */
  settled: boolean
  /** When the batch got its first point (ms). */
  openedAt: number
}

/** A point InfluxDB (or the cardinality guard) refused, with the reason it gave. */
export interface Rejection {
  line: string
  reason: string
}

interface StoreOutcome {
  written: number
  rejections: Rejection[]
}

export interface WriterStats {
  written: number
  rejected: number
  failedRequests: number
  /** Points in memory: batched, in flight or waiting to retry. */
  buffered: number
  /** Points appended to the spool since start. */
  spooled: number
  /** Spooled points written to InfluxDB since start. */
  replayed: number
}

/** InfluxDB could not be reached or failed on its side: the same points may succeed later. */
class RetryableWriteError extends Error {}

const noDepth: SpoolDepth = { points: 0, bytes: 0, segments: 0 }

/**
 * Batches points and writes them to InfluxDB as line protocol with explicit
 * millisecond timestamps, so a point written twice (a retry, a replay, a
 * re-sent MQTT message) is still one point.
 *
 * What it adds to a plain HTTP write (the `influx` package does none of it):
 * - a batch InfluxDB cannot take now (down, timing out, 5xx) goes to the
 *   on-disk spool and counts as durable; the spool is replayed oldest first,
 *   with backoff and jitter while InfluxDB stays down, beside new writes;
 * - a 4xx names no line, so the batch is split until each refusal is pinned
 *   to its line: only those are rejected, with InfluxDB's reason; a 4xx is
 *   never retried;
 * - memory is bounded: past `maxBufferedPoints` new points go to the spool;
 * - a maker's tag cardinality is capped before InfluxDB's own limit is hit.
 *
 * Events: `rejected` (lines: string[], reason: string); `degraded` (err: Error)
 * when InfluxDB stops taking writes; `recovered`; `drained` when the spool
 * has been replayed to the end; `written` (points: number, seconds: number,
 * openedAt: epoch ms) per batch InfluxDB took, with the request's duration and
 * when the batch's first point came in.
 */
export class PointWriter extends EventEmitter {
  readonly stats: WriterStats = { written: 0, rejected: 0, failedRequests: 0, buffered: 0, spooled: 0, replayed: 0 }
  readonly spool: Spool | null
  private readonly host: string
  private readonly port: number
  private readonly writePath: string
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  private readonly maxBatch: number
  private readonly interval: number
  private readonly maxConcurrent: number
  private readonly timeoutMs: number
  private readonly maxBuffered: number
  private readonly maxRetryDelay: number
  private readonly maxBatchWait: number
  private readonly guard: SeriesGuard
  private readonly log: Logger
  private current: Batch = newBatch()
  private readonly retryQueue: Batch[] = []
  private readonly inFlight = new Set<Batch>()
  /** Batches waiting out a retry delay. */
  private readonly backingOff = new Set<Batch>()
  private timer: NodeJS.Timeout | null = null
  private replayTimer: NodeJS.Timeout | null = null
  private replaying = false
  private replayAttempts = 0
  private unreachable = false
  private closing = false
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
    this.interval = opts.flushIntervalMs ?? 25
    this.maxConcurrent = opts.maxConcurrentWrites ?? 2
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000
    this.maxBuffered = opts.maxBufferedPoints ?? 100_000
    this.maxRetryDelay = opts.maxRetryDelayMs ?? 10_000
    this.maxBatchWait = opts.maxBatchWaitMs ?? 1000
    this.spool = opts.spool ?? null
    this.guard = new SeriesGuard(opts.cardinality)
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'writer' })
    // Points left by a previous process are replayed first thing.
    if (this.spool && !this.spool.empty) this.scheduleReplay(0)
  }

  /** InfluxDB's last answer was a failure: new batches go straight to the spool. */
  get degraded (): boolean {
    return this.unreachable
  }

  get spoolDepth (): SpoolDepth {
    return this.spool?.depth ?? noDepth
  }

  /**
   * Queues points; `done` fires once they are durable. Returns false (and
   * calls `done` with an error) when they can be neither held nor spooled.
   */
  write (points: readonly Point[], done?: Durable): boolean {
    if (this.closing) {
      done?.(new Error('the point writer is closed'))
      return false
    }
    const lines: string[] = []
    let refused: Rejection[] | null = null
    for (const p of points) {
      const reason = this.guard.refusal(p)
      if (reason) (refused ??= []).push({ line: toLine(p), reason })
      else lines.push(toLine(p))
    }
    if (refused) this.reject(refused)
    return this.enqueue(lines, done)
  }

  /**
   * `write` for the values of one device taken at one time, as ingest has
   * them: the series is checked once, and no point object is made per value.
   */
  writeValues (series: Series, values: ReadonlyArray<{ capability: string, value: ReadingValue }>, ts: number, done?: Durable): boolean {
    if (this.closing) {
      done?.(new Error('the point writer is closed'))
      return false
    }
    const reason = this.guard.refusal(series)
    const lines: string[] = new Array(values.length)
    for (let i = 0; i < values.length; i++) lines[i] = lineOf(values[i].capability, series, values[i].value, ts)
    if (reason) {
      this.reject(lines.map((line) => ({ line, reason })))
      done?.()
      return true
    }
    return this.enqueue(lines, done)
  }

  private enqueue (lines: string[], done?: Durable): boolean {
    if (lines.length === 0) {
      done?.()
      return true
    }
    if (this.stats.buffered + lines.length > this.maxBuffered) {
      // Memory is at its bound (InfluxDB slow or down): the spool takes over, a whole batch per append.
      const waiting = this.spool ? this.takeCurrent() : null
      if (waiting && !this.spoolBatch(waiting)) this.retryQueue.push(waiting)
      if (this.stats.buffered + lines.length > this.maxBuffered) {
        if (this.appendToSpool(lines)) {
          done?.()
          return true
        }
        done?.(new Error(`the point writer holds ${this.stats.buffered} points, its limit, and cannot spool more`))
        return false
      }
    }
    const batch = this.current
    if (batch.lines.length === 0) batch.openedAt = Date.now()
    for (const line of lines) batch.lines.push(line)
    if (done) batch.callbacks.push(done)
    this.stats.buffered += lines.length
    if (batch.lines.length >= this.maxBatch) this.flush()
    else if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.interval)
    return true
  }

  /** Sends what is batched now, if a request slot is free; spools it while InfluxDB is down. */
  flush (): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    if (this.unreachable && this.spool) {
      const batch = this.takeCurrent()
      if (batch && !this.spoolBatch(batch)) this.retryQueue.push(batch)
    }
    while (this.inFlight.size < this.maxConcurrent) {
      const batch = this.retryQueue.shift() ?? this.takeCurrent()
      if (!batch) break
      void this.send(batch)
    }
    if (this.current.lines.length > 0 && this.spool) {
      // Every slot is busy: InfluxDB is slow. A batch that waited long enough is spooled.
      const waited = Date.now() - this.current.openedAt
      if (waited >= this.maxBatchWait) {
        const batch = this.takeCurrent()!
        if (!this.spoolBatch(batch)) this.retryQueue.push(batch)
      } else if (!this.timer) {
        this.timer = setTimeout(() => { this.timer = null; this.flush() }, this.maxBatchWait - waited)
      }
    }
  }

  /** Resolves once everything in memory has been written, spooled or finally refused. */
  async drain (): Promise<void> {
    this.flush()
    if (this.isIdle()) return
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve))
  }

  /**
   * Stops taking points and flushes what is in memory to InfluxDB, or to the
   * spool once `deadlineMs` has passed. What is still spooled is replayed by
   * the next process.
   */
  async close (deadlineMs = 10_000): Promise<void> {
    if (this.closing) return
    this.closing = true
    let timer: NodeJS.Timeout | undefined
    const inTime = await Promise.race([
      this.drain().then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), deadlineMs) }),
    ])
    clearTimeout(timer)
    if (!inTime) this.spillAll()
    if (this.replayTimer) clearTimeout(this.replayTimer)
    this.replayTimer = null
    this.closed = true
    this.agent.destroy()
    this.spool?.close()
  }

  private isIdle (): boolean {
    return this.inFlight.size === 0 && this.backingOff.size === 0 && this.retryQueue.length === 0 && this.current.lines.length === 0
  }

  private takeCurrent (): Batch | null {
    if (this.current.lines.length === 0) return null
    const batch = this.current
    this.current = newBatch()
    return batch
  }

  private async send (batch: Batch): Promise<void> {
    this.inFlight.add(batch)
    batch.attempts++
    let outcome: StoreOutcome | Error
    const startedAt = performance.now()
    try {
      outcome = await this.store(batch.lines)
    } catch (err) {
      outcome = err as Error
    }
    this.inFlight.delete(batch)
    if (batch.settled) return this.afterRequest()
    if (outcome instanceof Error) return this.retry(batch, outcome)
    this.recovered()
    this.reject(outcome.rejections)
    this.stats.written += outcome.written
    // For the latency histograms (hub/src/metrics.ts): once per batch, never per point.
    this.emit('written', outcome.written, (performance.now() - startedAt) / 1000, batch.openedAt)
    this.settle(batch)
    this.afterRequest()
  }

  /**
   * Writes lines; a 4xx is split down to the lines InfluxDB refuses. Resending
   * the part it already stored is harmless: every line has its own timestamp.
   */
  private async store (lines: string[]): Promise<StoreOutcome> {
    const { status, text } = await this.post(lines.join('\n'))
    if (status === 204) return { written: lines.length, rejections: [] }
    if (status === 400 || status === 413 || status === 422) {
      const reason = parseInfluxError(text) ?? `HTTP ${status}`
      if (lines.length === 1) return { written: 0, rejections: [{ line: lines[0], reason }] }
      const mid = lines.length >>> 1
      const head = await this.store(lines.slice(0, mid))
      const tail = await this.store(lines.slice(mid))
      return { written: head.written + tail.written, rejections: head.rejections.concat(tail.rejections) }
    }
    // 5xx, or a 401/403/404 that says the server or its configuration is wrong, not the points.
    throw new RetryableWriteError(`InfluxDB answered ${status}: ${parseInfluxError(text) ?? text.slice(0, 200)}`)
  }

  private async post (body: string): Promise<{ status: number, text: string }> {
    return await new Promise((resolve, reject) => {
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
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', (err) => reject(new RetryableWriteError(err.message)))
      })
      req.on('timeout', () => req.destroy(new Error(`write timed out after ${this.timeoutMs} ms`)))
      req.on('error', (err) => reject(new RetryableWriteError(err.message)))
      req.end(body)
    })
  }

  private reject (rejections: Rejection[]): void {
    if (rejections.length === 0) return
    this.stats.rejected += rejections.length
    const byReason = new Map<string, string[]>()
    for (const r of rejections) {
      const lines = byReason.get(r.reason)
      if (lines) lines.push(r.line)
      else byReason.set(r.reason, [r.line])
    }
    for (const [reason, lines] of byReason) {
      this.log.warn({ reason, points: lines.length }, 'points refused; dead-lettered')
      this.emit('rejected', lines, reason)
    }
  }

  private settle (batch: Batch, err?: Error): void {
    if (batch.settled) return
    batch.settled = true
    this.stats.buffered -= batch.lines.length
    for (const cb of batch.callbacks) cb(err)
  }

  private retry (batch: Batch, err: Error): void {
    this.stats.failedRequests++
    this.degrade(err)
    if (this.spoolBatch(batch)) return this.afterRequest()
    // No spool, or a full one: keep the batch in memory; the broker holds the devices' acknowledgements meanwhile.
    const delay = this.backoff(batch.attempts)
    this.log.warn({ err: err.message, attempts: batch.attempts, points: batch.lines.length, retryInMs: Math.round(delay) }, 'write failed; will retry from memory')
    this.backingOff.add(batch)
    setTimeout(() => {
      this.backingOff.delete(batch)
      if (batch.settled) return this.afterRequest()
      this.retryQueue.push(batch)
      this.flush()
    }, delay).unref()
    this.afterRequest()
  }

  /** Moves a batch to the spool and reports it durable; false when there is no room. */
  private spoolBatch (batch: Batch): boolean {
    if (!this.appendToSpool(batch.lines)) return false
    this.settle(batch)
    return true
  }

  private appendToSpool (lines: string[]): boolean {
    if (!this.spool) return false
    try {
      if (!this.spool.append(lines)) return false
    } catch (err) {
      this.log.error({ err }, 'could not append to the spool')
      return false
    }
    this.stats.spooled += lines.length
    this.scheduleReplay()
    return true
  }

  /** At the close deadline: everything still in memory goes to the spool, or is given up. */
  private spillAll (): void {
    const batches = [...this.inFlight, ...this.backingOff, ...this.retryQueue, this.current]
    this.retryQueue.length = 0
    this.current = newBatch()
    let lost = 0
    for (const batch of batches) {
      if (batch.settled || batch.lines.length === 0) continue
      if (!this.spoolBatch(batch)) {
        lost += batch.lines.length
        this.settle(batch, new Error('the hub shut down before these points could be stored'))
      }
    }
    if (lost > 0) this.log.error({ points: lost }, 'points not stored at shutdown; their devices were not acknowledged and will re-send them')
  }

  private degrade (err: Error): void {
    if (this.unreachable) return
    this.unreachable = true
    this.log.warn({ err: err.message, spooling: this.spool !== null }, 'InfluxDB is not taking writes')
    this.emit('degraded', err)
  }

  private recovered (): void {
    if (!this.unreachable) return
    this.unreachable = false
    this.replayAttempts = 0
    this.log.info({ spooled: this.spoolDepth.points }, 'InfluxDB takes writes again')
    this.emit('recovered')
    this.scheduleReplay(0)
  }

  private backoff (attempts: number): number {
    return Math.min(this.maxRetryDelay, 100 * 2 ** Math.min(attempts, 10)) * (0.5 + Math.random())
  }

  private scheduleReplay (delayMs?: number): void {
    if (!this.spool || this.closed || this.replaying || this.replayTimer) return
    if (this.spool.empty) return
    const delay = delayMs ?? (this.unreachable ? this.backoff(this.replayAttempts) : 0)
    this.replayTimer = setTimeout(() => {
      this.replayTimer = null
      void this.replayNext()
    }, delay)
    this.replayTimer.unref()
  }

  /** Replays the oldest spooled record: one request at a time, beside new writes. */
  private async replayNext (): Promise<void> {
    const record = this.spool?.peek()
    if (!record || this.closed) return
    this.replaying = true
    try {
      const outcome = await this.store(record.lines)
      this.spool!.ack(record)
      this.stats.replayed += outcome.written
      this.stats.written += outcome.written
      this.reject(outcome.rejections)
      this.replaying = false
      this.recovered()
      if (this.spool!.empty) {
        this.log.info({ replayed: this.stats.replayed }, 'spool replayed to the end')
        this.emit('drained')
      }
    } catch (err) {
      this.replaying = false
      this.stats.failedRequests++
      this.replayAttempts++
      this.degrade(err as Error)
    }
    this.scheduleReplay()
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

function newBatch (): Batch {
  return { lines: [], callbacks: [], attempts: 0, settled: false, openedAt: 0 }
}

function parseInfluxError (text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: string }
    return body.error ?? null
  } catch {
    return text ? text.slice(0, 500) : null
  }
}
