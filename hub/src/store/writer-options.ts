import type { Logger } from 'pino'
import type { SeriesGuardOptions } from './cardinality.js'
import type { InfluxConnection } from './influx-http.js'
import type { Spool } from './spool.js'

/** How a PointWriter reaches InfluxDB (`url`, `token`, `ca`) and bounds what it holds. */
export interface PointWriterOptions extends InfluxConnection {
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
