import type { Logger } from 'pino'

/**
 * Warnings counted by kind and logged as one line with the counts at most
 * once per period: a flood of them costs a counter, not a log line each.
 */
export class WarningTally {
  private counts: Record<string, number> = {}
  private since = Date.now()
  private lastError: unknown = null

  constructor (private readonly log: Logger, private readonly periodMs: number) {}

  note (kind: string, err?: unknown, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n
    if (err !== undefined) this.lastError = err
    if (Date.now() - this.since >= this.periodMs) this.flush()
  }

  flush (): void {
    if (Object.keys(this.counts).length > 0) {
      this.log.warn({ counts: this.counts, sinceMs: Date.now() - this.since, lastError: this.lastError ?? undefined }, 'node-cron warnings since the last report')
    }
    this.counts = {}
    this.lastError = null
    this.since = Date.now()
  }
}
