import type { IncomingMessage } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Client } from 'aedes'
import type { Logger } from 'pino'
import type { BrokerStats, SecurityEvent } from './options.js'

/** What every part of the broker shares: its log, its counters and the audit sink. */
export interface BrokerParts {
  log: Logger
  stats: BrokerStats
  /** Tells the audit log of a security event; never throws. */
  report: (event: SecurityEvent) => void
}

/** The device a client authenticated as; null for the service or before authentication. */
export function deviceOf (client: Client | null | undefined): string | null {
  return client?.principal?.kind === 'device' ? client.principal.deviceId : null
}

export function remoteAddress (client: Client): string | null {
  const conn = (client as unknown as { conn?: { remoteAddress?: string } }).conn
  const req = (client as unknown as { req?: IncomingMessage }).req
  return conn?.remoteAddress ?? req?.socket?.remoteAddress ?? null
}

/** A topic fit for a log line: bounded, control characters escaped. */
export function printable (topic: string): string {
  return topic.slice(0, 256).replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
