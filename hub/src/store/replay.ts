import type { Spool } from './spool.js'
import type { StoreOutcome } from './influx-write.js'

/** What the replay of the spool reports to its point writer. */
export interface ReplayHooks {
  /** True while InfluxDB's last answer was a failure: wait out a backoff between attempts. */
  degraded (): boolean
  /** A spooled record reached InfluxDB (some of its lines may have been refused). */
  replayed (outcome: StoreOutcome): void
  /** A replay attempt failed; the record stays in the spool. */
  failed (err: Error): void
  /** The spool has been replayed to the end. */
  drained (): void
}

/** A pause before attempt `attempts`: exponential from 100 ms up to `maxMs`, with ±50 % jitter. */
export function backoff (attempts: number, maxMs: number): number {
  return Math.min(maxMs, 100 * 2 ** Math.min(attempts, 10)) * (0.5 + Math.random())
}

/**
 * Replays the spool oldest record first, one request at a time beside new
 * writes, with backoff while InfluxDB stays down. A record is acknowledged in
 * the spool only once InfluxDB has answered for each of its lines.
 */
export class SpoolReplay {
  private timer: NodeJS.Timeout | null = null
  private running = false
  private attempts = 0
  private stopped = false

  constructor (
    private readonly spool: Spool,
    private readonly store: (lines: string[]) => Promise<StoreOutcome>,
    private readonly hooks: ReplayHooks,
    private readonly maxRetryDelayMs: number,
  ) {}

  /** Replays soon: after `delayMs`, or a backoff while InfluxDB is down, or at once. */
  schedule (delayMs?: number): void {
    if (this.stopped || this.running || this.timer || this.spool.empty) return
    const delay = delayMs ?? (this.hooks.degraded() ? backoff(this.attempts, this.maxRetryDelayMs) : 0)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.next()
    }, delay)
    this.timer.unref()
  }

  /** InfluxDB takes writes again: replay at once, backoff started over. */
  resume (): void {
    this.attempts = 0
    this.schedule(0)
  }

  stop (): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private async next (): Promise<void> {
    const record = this.spool.peek()
    if (!record || this.stopped) return
    this.running = true
    try {
      const outcome = await this.store(record.lines)
      this.spool.ack(record)
      this.running = false
      this.hooks.replayed(outcome)
      if (this.spool.empty) this.hooks.drained()
    } catch (err) {
      this.running = false
      this.attempts++
      this.hooks.failed(err as Error)
    }
    this.schedule()
  }
}
