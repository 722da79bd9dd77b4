import type { Logger } from 'pino'
import type { AuditEntry, Registry } from '../registry/registry.js'

export interface AuditLogOptions {
  /** Write pending entries after this many ms. Default 100. */
  flushIntervalMs?: number
  /** Entries held waiting for the registry; beyond this, new ones are counted and dropped. Default 10000. */
  maxPending?: number
  /** Records older than this are deleted, every `pruneIntervalMs`. Default 90 days. */
  retentionMs?: number
  /** Default 1 hour. */
  pruneIntervalMs?: number
  /**
   * Asked before each pruning: in a cluster only the leader prunes, so the
   * nodes do not all run the same deletes. Default: always.
   */
  shouldPrune?: () => boolean
}

/** Records deleted per statement: the embedded registry runs on the hub's thread. */
const PRUNE_CHUNK = 1000

/**
 * The security audit log: who did what, when and from where. Entries are
 * batched so an attack that produces many of them costs one insert per batch
 * and, past `maxPending`, a counter instead of memory.
 */
export class AuditLog {
  private pending: AuditEntry[] = []
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> = Promise.resolve()
  private readonly flushIntervalMs: number
  private readonly maxPending: number
  /** Entries dropped because too many were pending. */
  dropped = 0

  private readonly retentionMs: number
  private readonly pruning: NodeJS.Timeout

  constructor (private readonly registry: Registry, private readonly log: Logger, opts: AuditLogOptions = {}) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 100
    this.maxPending = opts.maxPending ?? 10_000
    this.retentionMs = opts.retentionMs ?? 90 * 86_400_000
    this.pruning = setInterval(() => {
      if (opts.shouldPrune && !opts.shouldPrune()) return
      this.prune().then((n) => {
        if (n > 0) this.log.info({ pruned: n }, 'old audit records pruned')
      }, (err: Error) => this.log.error({ err }, 'old audit records could not be pruned'))
    }, opts.pruneIntervalMs ?? 3_600_000)
    this.pruning.unref()
  }

  /**
   * Deletes the records older than the retention, a chunk per statement with
   * I/O in between; returns how many went.
   */
  async prune (now = Date.now()): Promise<number> {
    const before = new Date(now - this.retentionMs)
    let total = 0
    for (;;) {
      const n = await this.registry.pruneAudit(before, PRUNE_CHUNK)
      total += n
      if (n < PRUNE_CHUNK) return total
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /** Stops pruning and writes what is pending. */
  async close (): Promise<void> {
    clearInterval(this.pruning)
    await this.flush()
  }

  record (entry: AuditEntry): void {
    if (this.pending.length >= this.maxPending) {
      this.dropped++
      return
    }
    this.pending.push({ ...entry, detail: entry.detail.slice(0, 1000) })
    this.timer ??= setTimeout(() => { this.timer = null; void this.flush() }, this.flushIntervalMs)
  }

  /** Writes what is pending; resolves when it is stored. */
  async flush (): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    const batch = this.pending
    this.pending = []
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return
      try {
        await this.registry.appendAudit(batch)
      } catch (err) {
        this.log.error({ err, entries: batch.length }, 'audit entries could not be stored')
      }
    })
    await this.flushing
  }
}
