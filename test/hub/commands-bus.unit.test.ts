import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { resolveCapabilities } from '@trellis/device-sdk'
import { CommandService } from '../../hub/src/commands/service.js'
import type { CommandLog, CommandRecord } from '../../hub/src/commands/command-log.js'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'
import { HubMetrics } from '../../hub/src/metrics.js'
import type { DeviceContext } from '../../hub/src/registry/directory.js'
import { StateStore } from '../../hub/src/state/state.js'
import type { Registry } from '../../hub/src/registry/registry.js'
import { FakeBus } from '../support/fake-bus.js'

// The command service on a fake bus: no broker, no SQL.
const model = { id: 'md-1', name: 'lock-1', makerId: 'mk-1', capabilities: new Map(resolveCapabilities(['lock']).map((c) => [c.name, c])), mapping: null, heartbeatMs: null }
const deviceId = 'dev-lock'

function device (ownerId: string | null, releasedAt: number | null = null): DeviceContext {
  return { id: deviceId, makerId: 'mk-1', ownerId, secretHash: '', disabled: false, releasedAt, model, series: { device: deviceId, model: 'md-1', maker: 'mk-1' } }
}

/** The command log's interface, in memory. */
function memoryLog () {
  const records = new Map<string, CommandRecord>()
  const log = {
    records,
    async insert (c: CommandRecord) { records.set(c.id, c) },
    async update (c: CommandRecord) { records.set(c.id, c) },
    async flush () {},
    async get (_d: string, id: string) { return records.get(id) ?? null },
    async recent () { return [...records.values()] },
    async queued () { return [] },
    async claim (ids: string[], sentAt: number) {
      const claimed = ids.filter((id) => { const r = records.get(id); return r && r.status === 'pending' && r.sentAt === null })
      for (const id of claimed) records.get(id)!.sentAt = sentAt
      return new Set(claimed)
    },
    async abandonInFlight () { return 0 },
    async prune () { return 0 },
  }
  return log
}

let service: CommandService | undefined
afterEach(async () => { await service?.close() })

async function serviceOn (bus: FakeBus, directory: { current: DeviceContext }, opts: { lateAckWindowMs?: number } = {}) {
  const state = new StateStore({ loadStates: async () => [], saveStates: async () => {} } as unknown as Registry)
  const commandLog = memoryLog()
  const metrics = new HubMetrics()
  service = await CommandService.start({
    ...opts,
    bus,
    directory: { peek: () => directory.current, get: async () => directory.current } as never,
    state,
    writer: { writeValues: () => true } as never,
    deadLetters: new DeadLetters(),
    metrics,
    commandLog: commandLog as unknown as CommandLog,
    log: pino({ level: 'silent' }),
  })
  const changes: CommandRecord[] = []
  service.on('change', (r: CommandRecord) => changes.push(r))
  return { service, state, commandLog, changes, metrics }
}

const settled = (changes: CommandRecord[], id: string) => new Promise<CommandRecord>((resolve, reject) => {
  const deadline = Date.now() + 5000
  const poll = () => {
    const last = changes.filter((c) => c.id === id).at(-1)
    if (last && last.status !== 'pending') return resolve(last)
    if (Date.now() > deadline) return reject(new Error(`command ${id} still pending`))
    setImmediate(poll)
  }
  poll()
})

describe('commands on the device bus', () => {
  it('publishes a queued command once the device can receive commands, not when it merely connects', async () => {
    const bus = new FakeBus()
    const directory = { current: device('ow-a') }
    const { service } = await serviceOn(bus, directory)
    const queued = await service.send(directory.current, 'ow-a', { set: { lock: true } }, { queue: true })
    expect(queued.status).toBe('pending')
    bus.connect(deviceId)
    expect(bus.published).toHaveLength(0)
    bus.subscribe(deviceId)
    await new Promise((resolve) => setImmediate(resolve))
    expect(bus.published.map((p) => JSON.parse(p.payload.toString()))).toEqual([{ id: queued.id, set: { lock: true } }])
  })

  it('settles a command from its ack delivered on the bus', async () => {
    const bus = new FakeBus()
    const directory = { current: device('ow-a') }
    const { service, state } = await serviceOn(bus, directory)
    state.setPresence(deviceId, true)
    const sent = service.send(directory.current, 'ow-a', { set: { lock: true } }, { waitMs: 5000 })
    await new Promise((resolve) => setImmediate(resolve))
    const { id } = JSON.parse(bus.published[0].payload.toString())
    service.handleAck(deviceId, Buffer.from(JSON.stringify({ id, status: 'ok', state: { lock: true } })))
    expect(await sent).toMatchObject({ id, status: 'ok', state: { lock: true } })
  })

  it('takes a duplicate or late ack within the late-ack window, the window starting again at a late ack, and refuses one after it', async () => {
    const windowMs = 1000
    const bus = new FakeBus()
    const directory = { current: device('ow-a') }
    const { service, state, metrics } = await serviceOn(bus, directory, { lateAckWindowMs: windowMs })
    const refused = async () => (await metrics.deadLetters.get()).values[0]?.value ?? 0
    const ack = (id: string) => service.handleAck(deviceId, Buffer.from(JSON.stringify({ id, status: 'ok', state: { lock: true } })))
    const until = async (what: string, done: () => Promise<boolean>, step?: () => void) => {
      const deadline = Date.now() + 10_000
      while (!await done()) {
        if (Date.now() > deadline) throw new Error(`still waiting for ${what} after 10 s`)
        await new Promise((resolve) => setTimeout(resolve, 10))
        step?.()
      }
    }
    state.setPresence(deviceId, true)
    const answered = service.send(directory.current, 'ow-a', { set: { lock: true } }, { waitMs: 5000 })
    await new Promise((resolve) => setImmediate(resolve))
    const first = JSON.parse(bus.published[0].payload.toString()).id as string
    ack(first)
    expect(await answered).toMatchObject({ status: 'ok' })
    ack(first) // a QoS 1 duplicate
    const timedOut = await service.send(directory.current, 'ow-a', { set: { lock: false } }, { waitMs: 20 })
    const timedOutAt = Date.now()
    expect(timedOut.status).toBe('timeout')
    // Acked late, half a window after its timeout: its window starts again then.
    await until('half a window', async () => Date.now() - timedOutAt >= windowMs / 2)
    const lateAt = Date.now()
    ack(timedOut.id)
    expect(timedOut.status).toBe('ok')
    expect(await refused()).toBe(0)
    // Past the first command's window its duplicates are refused ...
    await until("the first command's window to end", async () => await refused() === 1, () => ack(first))
    // ... and past the timed-out command's first window, its duplicates are still taken.
    await until("the timed-out command's first window to end", async () => Date.now() - timedOutAt > windowMs + 50)
    if (Date.now() - lateAt < windowMs) {
      ack(timedOut.id)
      expect(await refused()).toBe(1)
    }
    await until("the late-acked command's window to end", async () => await refused() === 2, () => ack(timedOut.id))
    expect(Date.now() - lateAt).toBeGreaterThanOrEqual(windowMs)
  })

  it('does not deliver a queued command whose issuer no longer owns the device, even when no change was announced', async () => {
    const bus = new FakeBus()
    const directory = { current: device('ow-a') }
    const { service, changes } = await serviceOn(bus, directory)
    const queued = await service.send(directory.current, 'ow-a', { set: { lock: false } }, { queue: true })
    expect(service.desired(deviceId).get('lock')?.value).toBe(false)
    // Released and claimed by B behind the service's back: the check at delivery still holds.
    directory.current = device('ow-b', Date.now())
    expect(service.desired(deviceId).size).toBe(0)
    bus.connect(deviceId, true)
    const ended = await settled(changes, queued.id)
    expect(ended.status).toBe('error')
    expect(ended.error).toMatch(/changed owner/)
    expect(bus.published).toHaveLength(0)
  })

  it('cancels the previous owner\'s queue and forgets the readings on release', async () => {
    const bus = new FakeBus()
    const directory = { current: device('ow-a') }
    const { service, state, changes } = await serviceOn(bus, directory)
    state.applyReadings(deviceId, [{ capability: 'lock', value: true }], Date.now() + 60_000)
    state.setPresence(deviceId, false)
    const queued = await service.send(directory.current, 'ow-a', { set: { lock: false } }, { queue: true })
    directory.current = device(null, Date.now())
    await service.ownershipChanged(deviceId)
    expect((await settled(changes, queued.id)).error).toMatch(/changed owner/)
    expect(state.get(deviceId)!.readings.size).toBe(0)
    expect(service.desired(deviceId).size).toBe(0)
  })
})
