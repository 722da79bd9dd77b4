import type { DeviceBus } from '@trellis/broker'
import type { Logger } from 'pino'
import type { DeviceDirectory } from '../registry/directory.js'
import type { StateStore } from '../state/state.js'
import type { PointWriter } from '../store/writer.js'
import type { DeadLetters } from '../ingest/dead-letters.js'
import type { HubMetrics } from '../metrics.js'
import type { CommandLog, CommandOrigin } from './command-log.js'

export interface CommandServiceOptions {
  /** The device transport commands are published on. */
  bus: DeviceBus
  directory: DeviceDirectory
  state: StateStore
  writer: PointWriter
  deadLetters: DeadLetters
  metrics: HubMetrics
  commandLog: CommandLog
  log: Logger
  /** How long a command waits for its ack when the caller does not say. Default 5000 ms. */
  defaultWaitMs?: number
  /** How long an ack that comes after its command timed out still counts, and a duplicate ack is recognised. Default 60000 ms. */
  lateAckWindowMs?: number
  /** How long a queued command waits for its offline device when the caller does not say. Default 3600000 ms (1 h). */
  defaultQueueTtlMs?: number
  /** Commands pending per device at most, queued or awaiting their ack. Default 100. */
  maxPendingPerDevice?: number
  /** How often expired queued commands are dropped. Default 1000 ms. */
  queueSweepMs?: number
  /** Settled commands are kept in the registry this long. Default 2592000000 ms (30 days). */
  retentionMs?: number
}

export interface SendOptions {
  /** How long to wait for the ack, in ms; 0 returns at once with `pending`. Default: the service's `defaultWaitMs`. */
  waitMs?: number
  /** Queue the command when the device is offline instead of refusing it. Default false. */
  queue?: boolean
  /** How long a queued command waits for its device, in ms. Default: the service's `defaultQueueTtlMs`. */
  queueTtlMs?: number
  /** Default `api`. */
  origin?: CommandOrigin
}

export type CommandRefusal = 'invalid' | 'offline' | 'busy'

/** A command the hub will not send, with a message that says why. */
export class CommandRefused extends Error {
  constructor (readonly reason: CommandRefusal, message: string) { super(message) }
}
