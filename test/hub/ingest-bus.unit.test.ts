import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { resolveCapabilities } from '@trellis/device-sdk'
import { attachIngest } from '../../hub/src/ingest/ingest.js'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'
import { HubMetrics } from '../../hub/src/metrics.js'
import type { DeviceContext } from '../../hub/src/registry/directory.js'
import { FakeBus } from '../support/fake-bus.js'

// Ingest on a fake bus: every channel, presence from connections, and the window of device time.
const device: DeviceContext = {
  id: 'dev-bus',
  makerId: 'mk-1',
  ownerId: null,
  secretHash: '',
  disabled: false,
  releasedAt: null,
  model: { id: 'md-1', name: 'thermo-1', makerId: 'mk-1', capabilities: new Map(resolveCapabilities(['temperature']).map((c) => [c.name, c])), mapping: null, heartbeatMs: null },
  series: { device: 'dev-bus', model: 'md-1', maker: 'mk-1' },
}

async function ingestOn (bus: FakeBus, opts: { maxClockAheadMs?: number, maxReadingAgeMs?: number } = {}) {
  const presence: Array<[string, boolean]> = []
  const applied: Array<{ value: unknown, ts: number }> = []
  const acks: string[] = []
  const events: string[] = []
  const deadLetters = new DeadLetters()
  const ingest = await attachIngest({
    bus,
    directory: { peek: (id: string) => (id === device.id ? device : undefined), get: async () => null } as never,
    state: {
      touch: () => {},
      setPresence: (id: string, online: boolean) => { presence.push([id, online]) },
      applyReadings: (_id: string, readings: Array<{ value: unknown }>, ts: number) => { for (const r of readings) applied.push({ value: r.value, ts }) },
    } as never,
    writer: { stats: { buffered: 0 }, flush: () => {}, writeValues: (_s: unknown, _v: unknown, _ts: number, done?: (err?: Error) => void) => { setImmediate(() => done?.()); return true } } as never,
    deadLetters,
    metrics: new HubMetrics(),
    log: pino({ level: 'silent' }),
    onAck: (_id, payload) => acks.push(payload.toString()),
    onEvent: (_id, event) => events.push(event.type),
    ...opts,
  })
  return { ingest, presence, applied, acks, events, deadLetters }
}

describe('ingest on the device bus', () => {
  it('takes every outbound channel, and lets go of all of them when detached', async () => {
    const bus = new FakeBus()
    const { ingest, applied, acks, events, presence } = await ingestOn(bus)
    await bus.deliverAndWait(device.id, 'telemetry', '{"readings":{"temperature":21}}')
    await bus.deliverAndWait(device.id, 'events', '{"type":"door-opened"}')
    await bus.deliverAndWait(device.id, 'acks', '{"id":"c1","status":"ok"}')
    await bus.deliverAndWait(device.id, 'presence', 'offline')
    expect(applied.map((a) => a.value)).toEqual([21])
    expect(events).toEqual(['door-opened'])
    expect(acks).toEqual(['{"id":"c1","status":"ok"}'])
    expect(presence).toEqual([[device.id, false]])
    await ingest.detach()
    for (const channel of ['telemetry', 'events', 'presence', 'acks'] as const) expect(bus.handles(channel)).toBe(false)
  })

  it('marks a known device online when it connects and offline when its last connection goes', async () => {
    const bus = new FakeBus()
    const { presence } = await ingestOn(bus)
    bus.connect(device.id)
    bus.disconnect(device.id)
    bus.connect('dev-unknown')
    expect(presence).toEqual([[device.id, true], [device.id, false]])
  })

  it('refuses readings outside the window of device time, with the reason, and takes those inside it', async () => {
    const bus = new FakeBus()
    const { applied, deadLetters } = await ingestOn(bus, { maxClockAheadMs: 60_000, maxReadingAgeMs: 3_600_000 })
    const now = Date.now()
    for (const ts of [now + 10 * 60_000, now - 2 * 3_600_000, now + 30_000, now - 30 * 60_000]) {
      await bus.deliverAndWait(device.id, 'telemetry', JSON.stringify({ ts, readings: { temperature: 20 } }))
    }
    expect(applied.map((a) => a.ts)).toEqual([now + 30_000, now - 30 * 60_000])
    expect(deadLetters.recent().map((l) => l.reason).reverse()).toEqual([
      expect.stringMatching(/is [\d.]+ minutes ahead of the hub's clock; readings may be at most 60 seconds ahead/),
      expect.stringMatching(/is older than the 60-minute horizon; readings older than 60 minutes are refused/),
    ])
  })
})
