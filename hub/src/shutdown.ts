import type { Logger } from 'pino'
import { ConfigError } from './config.js'
import { InfluxdMissingError } from './store/influxd.js'
import { PostgresMissingError } from './registry/postgres-server.js'

/**
 * How long a stop may take from the first signal until the process exits anyway.
 * The hub's part (stop accepting, flush batches to InfluxDB or the spool) is
 * bounded by `hubCloseDeadlineMs`; the rest is for influxd to stop. A supervisor
 * must wait longer than this before it kills (compose: `stop_grace_period`).
 */
export const shutdownDeadlineMs = 15_000
/** The hub's own close (flush included) within the shutdown; leaves influxd time to stop. */
export const hubCloseDeadlineMs = 10_000

export interface ShutdownOptions {
  /** Exit anyway this many ms after the first signal. Default `shutdownDeadlineMs` (15000). */
  deadlineMs?: number
  /** Signals that start the shutdown. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[]
  /** Where the stop is logged; a function when the logger comes later. Default: not logged. */
  logger?: Logger | (() => Logger | undefined)
  /** Ends the process; tests replace it. Default `process.exit`. */
  exit?: (code: number) => void
  /**
   * A signal this soon after the first one is the same stop, not a second
   * one: Ctrl-C in a terminal reaches both npm and node, and npm forwards its
   * copy too, so node gets SIGINT twice within milliseconds. Default 1000 ms.
   */
  repeatWindowMs?: number
}

/**
 * On SIGTERM/SIGINT: closes what `close` closes (for the hub: stop accepting,
 * flush batches to InfluxDB or the spool, close sessions, stop influxd), then
 * exits 0; exits 1 when that takes longer than the deadline or fails. A second
 * signal exits at once. Returns a function that removes the handlers.
 *
 * Whatever way the process exits, the managed influxd goes with it (its
 * `exit` hook): no path leaves an orphan.
 */
export function closeOnSignals (close: () => Promise<void>, opts: ShutdownOptions = {}): () => void {
  const deadlineMs = opts.deadlineMs ?? shutdownDeadlineMs
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT']
  const exit = opts.exit ?? ((code: number) => process.exit(code))
  const log = () => typeof opts.logger === 'function' ? opts.logger() : opts.logger
  const repeatWindowMs = opts.repeatWindowMs ?? 1000
  let stopping = false
  let firstAt = 0
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping && performance.now() - firstAt < repeatWindowMs) {
      log()?.debug({ signal }, 'the same stop signalled again (npm forwards what the terminal also sent); ignored')
      return
    }
    if (stopping) {
      log()?.warn({ signal }, 'second signal; exiting now')
      return exit(1)
    }
    stopping = true
    firstAt = performance.now()
    log()?.info({ signal, deadlineMs }, 'shutting down')
    const timer = setTimeout(() => {
      log()?.error({ deadlineMs }, 'shutdown did not finish in time; exiting')
      exit(1)
    }, deadlineMs)
    timer.unref()
    close().then(() => {
      clearTimeout(timer)
      log()?.info('shut down cleanly')
      exit(0)
    }, (err: unknown) => {
      clearTimeout(timer)
      log()?.error({ err }, 'shutdown failed')
      exit(1)
    })
  }
  for (const s of signals) process.on(s, onSignal)
  return () => { for (const s of signals) process.off(s, onSignal) }
}

export interface Service {
  close (): Promise<void>
  /** Logs the stop when given. */
  log?: Logger
}

export interface RunServiceOptions extends ShutdownOptions {
  /** Where start-up failures are reported. Default: a line on stderr. */
  report?: (message: string) => void
}

/**
 * The one way every entry point runs (hub, `npm start`, broker, simulators):
 * the signal handlers go in before anything starts, so a signal during start-up
 * waits for the start to finish and then closes what it started, instead of
 * killing the process with children half-started. A configuration error or a
 * missing influxd exits 2 with its message; any other start-up failure exits 1.
 */
export async function runService<S extends Service> (start: () => Promise<S>, opts: RunServiceOptions = {}): Promise<S> {
  const exit = opts.exit ?? ((code: number) => process.exit(code))
  const report = opts.report ?? ((message: string) => { process.stderr.write(`${message}\n`) })
  const started = start()
  let service: S | undefined
  // A failed start has nothing to close.
  closeOnSignals(async () => { await (await started.catch(() => null))?.close() }, { ...opts, logger: opts.logger ?? (() => service?.log) })
  try {
    service = await started
    return service
  } catch (err) {
    if (err instanceof ConfigError || err instanceof InfluxdMissingError || err instanceof PostgresMissingError) {
      report(err.message)
      exit(2)
    } else {
      report(`failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
      exit(1)
    }
    throw err
  }
}
