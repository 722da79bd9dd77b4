import { pino } from 'pino'
import { buildHub, type Hub, type HubOptions } from '@trellis/hub'
import { freshDatabase } from './postgres.js'

export interface TestStack {
  hub: Hub
  httpUrl: string
  mqttUrl: string
  close (): Promise<void>
}

/** Quiet unless LOG_LEVEL is set. */
export const testLogger = () => pino({ level: process.env.LOG_LEVEL ?? 'silent' })

export type TestStackOptions = Omit<HubOptions, 'logger' | 'sql'> & Partial<Pick<HubOptions, 'logger' | 'sql'>>

/**
 * A hub and its broker on ephemeral 127.0.0.1 ports. Without `sql`, its
 * registry is a fresh database on the run's PostgreSQL, dropped on close.
 * Schedules may fire every second here (the hub's default minimum is 60 s), so tests need not wait minutes.
 */
export async function startStack (opts: TestStackOptions): Promise<TestStack> {
  const db = opts.sql ? null : await freshDatabase()
  try {
    const hub = await buildHub({ logger: testLogger(), ...opts, sql: opts.sql ?? db!.open(), writer: { flushIntervalMs: 20, ...opts.writer }, schedules: { minIntervalSeconds: 1, ...opts.schedules } })
    const { httpUrl, mqttUrl } = await hub.listen({ httpPort: 0, mqttPort: 0 })
    return { hub, httpUrl, mqttUrl, close: async () => { await hub.close(); await db?.drop() } }
  } catch (err) {
    await db?.drop()
    throw err
  }
}
