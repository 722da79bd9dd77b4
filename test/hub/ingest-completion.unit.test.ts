import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { resolveCapabilities } from '@trellis/device-sdk'
import { attachIngest } from '../../hub/src/ingest/ingest.js'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'
import { HubMetrics } from '../../hub/src/metrics.js'
import type { DeviceContext } from '../../hub/src/registry/directory.js'
import type { Point } from '../../hub/src/store/points.js'
import { FakeBus } from '../support/fake-bus.js'

const device: DeviceContext = {
  id: 'dev-completion',
  makerId: 'mk-1',
  ownerId: null,
  secretHash: '',
  disabled: false,
  releasedAt: null,
  model: { id: 'md-1', name: 'thermo-1', makerId: 'mk-1', capabilities: new Map(resolveCapabilities(['temperature']).map((c) => [c.name, c])), mapping: null, heartbeatMs: null },
  series: { device: 'dev-completion', model: 'md-1', maker: 'mk-1' },
}

type FakeWriter = { write (points: readonly Point[], done?: (err?: Error) => void): boolean, flush (): void, stats?: { buffered: number } }

/** A fake that takes points, seen through the writer's one-device `writeValues`, as ingest calls it. */
function asWriter (fake: FakeWriter) {
  return {
    stats: fake.stats ?? { buffered: 0 },
    flush: () => fake.flush(),
    writeValues: (series: { device: string, model: string, maker: string }, values: ReadonlyArray<{ capability: string, value: Point['value'] }>, ts: number, done?: (err?: Error) => void) =>
      fake.write(values.map((v) => ({ measurement: v.capability, ...series, value: v.value, ts })), done),
  }
}

/** Ingest on fakes: a device bus, a writer that is full or stores at once. */
async function ingestWith (writer: FakeWriter) {
  const bus = new FakeBus()
  const state = { touch: () => {}, applyReadings: () => {}, setPresence: () => {} }
  const directory = { peek: (id: string) => (id === device.id ? device : undefined), get: async () => null }
  const metrics = new HubMetrics()
  await attachIngest({
    bus, directory: directory as never, state: state as never, writer: asWriter(writer) as never,
    deadLetters: new DeadLetters(), metrics, log: pino({ level: 'silent' }),
  })
  const deliver = (payload: string, qos = 0) => {
    let completed = false
    bus.deliver(device.id, 'telemetry', payload, qos as 0 | 1, () => { completed = true })
    return {
      completedInside: completed,
      /** Whether it completed by the next turn of the event loop. */
      settled: new Promise<boolean>((resolve) => setImmediate(() => resolve(completed))),
      get completed () { return completed },
    }
  }
  return Object.assign(deliver, { metrics })
}

describe('ingest hands a delivery back to the broker', () => {
  // aedes parses the client's next packets inside the completion: completing inside
  // the call, message after message, recursed until the stack overflowed (ingest bench).
  it('never inside the delivery call, for a rejected payload or a full writer', async () => {
    const full = { write: (_p: readonly Point[], done?: (err?: Error) => void) => { done?.(new Error('full')); return false }, flush: () => {} }
    const deliver = await ingestWith(full)
    for (const payload of ['not json', '{"readings":{"temperature":999}}', '{"readings":{"temperature":21}}']) {
      const result = deliver(payload)
      expect(result.completedInside).toBe(false)
      expect(await result.settled).toBe(true)
    }
  })

  it('asks the writer to send once a burst of QoS 1 reads is handled', async () => {
    const written: Point[] = []
    let flushes = 0
    const writer = { write: (points: readonly Point[]) => { written.push(...points); return true }, flush: () => { flushes++ } }
    const deliver = await ingestWith(writer)
    for (let i = 0; i < 50; i++) deliver(`{"ts":${Date.now() - 1000 + i},"readings":{"temperature":21}}`, 1)
    expect(flushes).toBe(0)
    await new Promise((resolve) => setImmediate(resolve))
    expect(written).toHaveLength(50)
    expect(flushes).toBe(1)
  })

  it('completes QoS 0 without waiting for durability, and QoS 1 only once its points are durable', async () => {
    const pending: Array<(err?: Error) => void> = []
    const writer = { write: (_p: readonly Point[], done?: (err?: Error) => void) => { if (done) pending.push(done); return true }, flush: () => {} }
    const deliver = await ingestWith(writer)
    const qos0 = deliver('{"readings":{"temperature":21}}', 0)
    expect(await qos0.settled).toBe(true)
    expect(pending).toHaveLength(0)
    const qos1 = deliver('{"readings":{"temperature":22}}', 1)
    expect(await qos1.settled).toBe(false)
    expect(pending).toHaveLength(1)
    pending[0]()
    await new Promise((resolve) => setImmediate(resolve))
    expect(qos1.completed).toBe(true)
  })

  it('makes QoS 0 wait for durability too while the writer is behind, so that TCP slows the device before anything is shed', async () => {
    const pending: Array<(err?: Error) => void> = []
    const writer = { stats: { buffered: 30_000 }, write: (_p: readonly Point[], done?: (err?: Error) => void) => { if (done) pending.push(done); return true }, flush: () => {} }
    const deliver = await ingestWith(writer)
    const held = deliver('{"readings":{"temperature":21}}', 0)
    expect(await held.settled).toBe(false)
    expect(pending).toHaveLength(1)
    writer.stats.buffered = 29_999
    expect(await deliver('{"readings":{"temperature":21}}', 0).settled).toBe(true)
    pending[0]()
    await new Promise((resolve) => setImmediate(resolve))
    expect(held.completed).toBe(true)
  })

  it('sheds and counts QoS 0 points that the writer can neither hold nor spool', async () => {
    const full = { write: () => false, flush: () => {} }
    const deliver = await ingestWith(full)
    expect(await deliver('{"readings":{"temperature":21}}', 0).settled).toBe(true)
    const shed = (await deliver.metrics.rejected.get()).values.find((v) => v.labels.reason === 'overload-shed')
    expect(shed?.value).toBe(1)
  })
})

describe('ingest under overload', () => {
  it('sheds and counts QoS 0 telemetry while the writer or the bus backlog is over its mark, and keeps QoS 1', async () => {
    const bus = new FakeBus()
    const written: Point[] = []
    const writer = { stats: { buffered: 0 }, write: (points: readonly Point[], done?: () => void) => { written.push(...points); setImmediate(() => done?.()); return true }, flush: () => {} }
    const metrics = new HubMetrics()
    await attachIngest({
      bus,
      directory: { peek: () => device, get: async () => device } as never,
      state: { touch: () => {}, applyReadings: () => {}, setPresence: () => {} } as never,
      writer: asWriter(writer) as never,
      deadLetters: new DeadLetters(),
      metrics,
      log: pino({ level: 'silent' }),
      shedQos0AbovePoints: 1000,
      shedQos0AboveQueuedMessages: 5,
    })
    const deliver = async (qos: 0 | 1) => { await bus.deliverAndWait(device.id, 'telemetry', '{"readings":{"temperature":21}}', qos) }
    await deliver(0)
    expect(written).toHaveLength(1)
    writer.stats.buffered = 1000
    await deliver(0)
    await deliver(0)
    expect(written).toHaveLength(1)
    await deliver(1)
    expect(written).toHaveLength(2)
    writer.stats.buffered = 0
    bus.backlog = 5
    await deliver(0)
    expect(written).toHaveLength(2)
    bus.backlog = 4
    await deliver(0)
    expect(written).toHaveLength(3)
    const shed = (await metrics.rejected.get()).values.find((v) => v.labels.reason === 'overload-shed')
    expect(shed?.value).toBe(3)
  })
})
