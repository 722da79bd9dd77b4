import { pino } from 'pino'
import { buildHub, type Hub, type HubOptions } from '@trellis/hub'

export interface TestStack {
  hub: Hub
  httpUrl: string
  mqttUrl: string
  close (): Promise<void>
}

/** Quiet unless LOG_LEVEL is set. */
export const testLogger = () => pino({ level: process.env.LOG_LEVEL ?? 'silent' })

/**
 * A hub and its broker on ephemeral 127.0.0.1 ports, registry in memory.
 * Schedules may fire every second here (the hub's default minimum is 60 s), so tests need not wait minutes.
 */
export async function startStack (opts: Omit<HubOptions, 'logger'> & { logger?: HubOptions['logger'] }): Promise<TestStack> {
  const hub = await buildHub({ logger: testLogger(), ...opts, writer: { flushIntervalMs: 20, ...opts.writer }, schedules: { minIntervalSeconds: 1, ...opts.schedules } })
  const { httpUrl, mqttUrl } = await hub.listen({ httpPort: 0, mqttPort: 0 })
  return { hub, httpUrl, mqttUrl, close: () => hub.close() }
}
