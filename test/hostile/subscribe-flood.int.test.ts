import { Writable } from 'node:stream'
import mqtt, { type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker, type Broker, type BrokerOptions, type SecurityEvent } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'
import { eventually } from '../support/wait.js'

// Issue #17, finding 7: each refused filter wrote an audit row and a warning line (50,400 rows and 10.8 MB in 20 s).
const deviceId = 'dev-flooder'
let broker: Broker | undefined
let client: MqttClient | undefined

afterEach(async () => {
  await client?.endAsync(true).catch(() => {})
  await broker?.close()
})

async function start (opts: Partial<BrokerOptions>) {
  const events: SecurityEvent[] = []
  let warnings = 0
  const lines = new Writable({ write (chunk, _enc, cb) { warnings += chunk.toString().split('\n').filter(Boolean).length; cb() } })
  broker = await createBroker({
    authenticateDevice: (id, secret) => id === deviceId && secret === 'device-secret',
    onSecurityEvent: (e) => events.push(e),
    logger: pino({ level: 'warn' }, lines),
    ...opts,
  })
  const { port } = await broker.listen({ port: 0 })
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: deviceId, username: deviceId, password: 'device-secret', protocolVersion: 4, reconnectPeriod: 0 })
  return { events, warnings: () => warnings, stats: broker.stats }
}

/** `count` filters this device may not subscribe to: other devices' commands. */
const othersCommands = (from: number, count: number) => Array.from({ length: count }, (_, i) => topics.commands(`dev-other-${from + i}`))

describe('refused subscriptions under a flood', () => {
  it('audits and logs the first refusal, then one summary per interval with the count', async () => {
    const b = await start({ subscribeRefusals: { summaryIntervalMs: 1000, budget: { perSecond: 10_000, burst: 10_000 } } })
    for (let i = 0; i < 10; i++) await client!.subscribeAsync(othersCommands(i * 50, 50), { qos: 0 }).catch(() => {})
    expect(b.stats.subscribeDenied).toBe(500)
    const summary = await eventually(() => b.events.find((e) => /more/.test(e.detail)), (e) => e !== undefined, { what: 'a summary row' })
    expect(summary!.detail).toMatch(/^499 more subscriptions refused in the last/)
    expect(b.events).toHaveLength(2)
    expect(b.events[0]).toMatchObject({ type: 'acl-violation', deviceId, detail: expect.stringMatching(/^subscription to devices\/dev-other-0\/commands denied/) })
    expect(b.warnings()).toBe(2)
  })

  it('disconnects a client that keeps sending refused subscriptions, with one row for it', async () => {
    const b = await start({})
    const closed = new Promise<void>((resolve) => client!.once('close', () => resolve()))
    // Bounded: at most 100 SUBSCRIBE packets of 20 refused filters each, sent without waiting for SUBACKs.
    for (let i = 0; i < 100 && client!.connected; i++) client!.subscribe(othersCommands(i * 20, 20), { qos: 0 }, () => {})
    await Promise.race([closed, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('not disconnected within 10 s')), 10_000))])
    expect(b.stats.subscribeDenied).toBeGreaterThanOrEqual(20)
    expect(b.events.length).toBeLessThanOrEqual(3)
    expect(b.events.at(-1)!.detail).toMatch(/refused subscriptions.*disconnected/)
    expect(b.warnings()).toBeLessThanOrEqual(3)
  })
})
