import type { Logger } from 'pino'

export interface ShutdownOptions {
  /** Exit anyway this many ms after the first signal. Default 15000: above the hub's 10 s flush deadline. */
  deadlineMs?: number
  /** Signals that start the shutdown. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[]
  logger?: Logger
  /** Ends the process; tests replace it. Default `process.exit`. */
  exit?: (code: number) => void
}

/**
 * On SIGTERM/SIGINT: closes what `close` closes (for the hub: stop accepting,
 * flush batches to InfluxDB or the spool, close sessions), then exits 0; exits
 * 1 when that takes longer than the deadline or fails. A second signal exits
 * at once. Returns a function that removes the handlers.
 */
export function closeOnSignals (close: () => Promise<void>, opts: ShutdownOptions = {}): () => void {
  const deadlineMs = opts.deadlineMs ?? 15_000
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT']
  const exit = opts.exit ?? ((code: number) => process.exit(code))
  let stopping = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      opts.logger?.warn({ signal }, 'second signal; exiting now')
      return exit(1)
    }
    stopping = true
    opts.logger?.info({ signal, deadlineMs }, 'shutting down')
    const timer = setTimeout(() => {
      opts.logger?.error({ deadlineMs }, 'shutdown did not finish in time; exiting')
      exit(1)
    }, deadlineMs)
    timer.unref()
    close().then(() => {
      clearTimeout(timer)
      opts.logger?.info('shut down cleanly')
      exit(0)
    }, (err: unknown) => {
      clearTimeout(timer)
      opts.logger?.error({ err }, 'shutdown failed')
      exit(1)
    })
  }
  for (const s of signals) process.on(s, onSignal)
  return () => { for (const s of signals) process.off(s, onSignal) }
}
