// Over 300 lines on purpose: batching and what becomes of a batch InfluxDB cannot
// take (spool, retry from memory, spill at close) share one set of batch lists and
// timers. The transport (influx-write.ts), replay (replay.ts), health
// (write-health.ts) and options (writer-options.ts) live apart.
import { EventEmitter } from 'node:events'
import { pino, type Logger } from 'pino'
import type { ReadingValue } from '@trellis/device-sdk'
import { lineOf, toLine, type Point, type Series } from './points.js'
import { SeriesGuard } from './cardinality.js'
import { LineWriter, type Rejection, type StoreOutcome } from './influx-write.js'
import { SpoolReplay, backoff } from './replay.js'
import type { Spool, SpoolDepth } from './spool.js'
import type { Durable, PointWriterOptions, WriterStats } from './writer-options.js'
import { WriteHealth } from './write-health.js'

export type { Rejection } from './influx-write.js'
export type { Durable, PointWriterOptions, WriterStats } from './writer-options.js'

interface Batch {
  lines: string[]
  callbacks: Durable[]
  attempts: number
  /** Callbacks have fired (written, spooled or given up at close). */
  settled: boolean
  /** When the batch got its first point (ms). */
  openedAt: number
}

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
 *   to its line (`LineWriter`): only those are rejected, with InfluxDB's
 *   reason; a 4xx is never retried;
 * - a 401/403 is a configuration error (`configError`, on /healthz), logged
 *   once; the points are spooled or kept meanwhile, never dropped;
 * - memory is bounded: past `maxBufferedPoints` new points go to the spool;
 * - a maker's tag cardinality is capped before InfluxDB's own limit is hit.
 *
 * Events: `rejected` (lines: string[], reason: string); `degraded` (err: Error)
 * when InfluxDB stops taking writes; `unauthorized` (err: Error) when it
 * refuses the credentials; `recovered`; `drained` when the spool has been
 * replayed to the end; `written` (points: number, seconds: number, openedAt:
 * epoch ms) per batch InfluxDB took, with the request's duration and when the
 * batch's first point came in.
 */
export class PointWriter extends EventEmitter {
  readonly stats: WriterStats = { written: 0, rejected: 0, failedRequests: 0, buffered: 0, spooled: 0, replayed: 0 }
  readonly spool: Spool | null
  private readonly influx: LineWriter
  private readonly replay: SpoolReplay | null
  private readonly maxBatch: number
  private readonly interval: number
  private readonly maxConcurrent: number
  private readonly maxBuffered: number
  private readonly maxRetryDelay: number
  private readonly maxBatchWait: number
  private readonly health: WriteHealth
  private readonly guard: SeriesGuard
  private readonly log: Logger
  private current: Batch = newBatch()
  private readonly retryQueue: Batch[] = []
  private readonly inFlight = new Set<Batch>()
  /** Batches waiting out a retry delay. */
  private readonly backingOff = new Set<Batch>()
  private timer: NodeJS.Timeout | null = null
  private closing = false
  private idleWaiters: Array<() => void> = []

  constructor (opts: PointWriterOptions) {
    super()
    this.influx = new LineWriter(opts, opts.database ?? 'trellis', opts.requestTimeoutMs ?? 10_000)
    this.maxBatch = opts.maxBatchPoints ?? 5000
    this.interval = opts.flushIntervalMs ?? 25
    this.maxConcurrent = opts.maxConcurrentWrites ?? 2
    this.maxBuffered = opts.maxBufferedPoints ?? 100_000
    this.maxRetryDelay = opts.maxRetryDelayMs ?? 10_000
    this.maxBatchWait = opts.maxBatchWaitMs ?? 1000
    this.spool = opts.spool ?? null
    this.guard = new SeriesGuard(opts.cardinality)
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'writer' })
    this.health = new WriteHealth(this, this.log, this.spool !== null)
    this.replay = this.spool && new SpoolReplay(this.spool, (lines) => this.influx.store(lines), {
      degraded: () => this.health.degraded,
      replayed: (outcome) => {
        this.stats.replayed += outcome.written
        this.stats.written += outcome.written
        this.reject(outcome.rejections)
        this.recovered()
      },
      failed: (err) => {
        this.stats.failedRequests++
        this.degrade(err)
      },
      drained: () => {
        this.log.info({ replayed: this.stats.replayed }, 'spool replayed to the end')
        this.emit('drained')
      },
    }, this.maxRetryDelay)
    // Points left by a previous process are replayed first thing.
    this.replay?.schedule(0)
  }

  /**
   * Why InfluxDB refuses this hub's writes when it is the configuration
   * (credentials wrong or lacking rights: 401/403), or null. Cleared by the
   * next write that succeeds.
   */
  get configError (): string | null {
    return this.health.configError
  }

  /** InfluxDB's last answer was a failure: new batches go straight to the spool. */
  get degraded (): boolean {
    return this.health.degraded
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
    if (this.health.degraded && this.spool) {
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
    this.replay?.stop()
    this.influx.close()
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
      outcome = await this.influx.store(batch.lines)
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
    const delay = backoff(batch.attempts, this.maxRetryDelay)
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
    this.replay?.schedule()
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
    this.health.failed(err)
  }

  private recovered (): void {
    if (this.health.succeeded(this.spoolDepth.points)) this.replay?.resume()
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

