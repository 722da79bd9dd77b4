import { describe, expect, it } from 'vitest'
import { StateStore } from '../../hub/src/state/state.js'
import type { Registry, StoredState } from '../../hub/src/registry/registry.js'

/** A registry that records each saveStates statement; `fail` refuses the next one. */
function recordingRegistry () {
  const statements: StoredState[][] = []
  const fake = {
    fail: false,
    statements,
    async loadStates (): Promise<StoredState[]> { return [] },
    async saveStates (states: StoredState[]): Promise<void> {
      if (fake.fail) {
        fake.fail = false
        throw new Error('registry unavailable')
      }
      statements.push(states)
    },
  }
  return fake
}

function report (store: StateStore, count: number, value: number, ts = 1_800_000_000_000): void {
  for (let i = 0; i < count; i++) store.applyReadings(`dev-${i}`, [{ capability: 'temperature', value }], ts, ts)
}

describe('state store persistence', () => {
  it('writes changed states a chunk per statement, and each device once', async () => {
    const registry = recordingRegistry()
    const store = new StateStore(registry as unknown as Registry, 60_000, 100)
    report(store, 250, 21.5)
    await store.persist()
    expect(registry.statements.map((s) => s.length)).toEqual([100, 100, 50])
    const ids = registry.statements.flat().map((s) => s.deviceId)
    expect(new Set(ids).size).toBe(250)
    expect(registry.statements[0][0].state.temperature).toEqual({ value: 21.5, ts: new Date(1_800_000_000_000).toISOString() })
    await store.persist()
    expect(registry.statements).toHaveLength(3)
  })

  it('leaves states changed during a round to the next round, with their newest values', async () => {
    const registry = recordingRegistry()
    const store = new StateStore(registry as unknown as Registry, 60_000, 10)
    report(store, 30, 20)
    const round = store.persist()
    // The first statement has run; the rest wait for their turn of the event loop.
    report(store, 5, 25, 1_800_000_001_000)
    await round
    expect(registry.statements.flat()).toHaveLength(30)
    await store.persist()
    const second = registry.statements.slice(3).flat()
    expect(second.map((s) => s.deviceId).sort()).toEqual(['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4'])
    expect(second.every((s) => s.state.temperature.value === 25)).toBe(true)
  })

  it('keeps what a failed statement did not write for the next round, and reports the failure', async () => {
    const registry = recordingRegistry()
    const store = new StateStore(registry as unknown as Registry, 60_000, 10)
    const errors: unknown[] = []
    store.on('error', (err) => errors.push(err))
    report(store, 25, 19)
    registry.fail = true
    await store.persist()
    expect(errors).toHaveLength(1)
    expect(registry.statements).toHaveLength(0)
    await store.persist()
    expect(registry.statements.map((s) => s.length)).toEqual([10, 10, 5])
  })

  it('keeps one reading per capability, updated in place, never replaced by an older one', () => {
    const store = new StateStore(recordingRegistry() as unknown as Registry)
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 20 }], 2000, 2000)
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 18 }], 1000, 2100)
    expect(store.get('dev-1')!.readings.get('temperature')).toMatchObject({ value: 20, ts: 2000 })
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 22 }], 3000, 3000)
    expect(store.get('dev-1')!.readings.get('temperature')).toMatchObject({ value: 22, ts: 3000 })
    expect(store.get('dev-1')!.readings.size).toBe(1)
  })

  it('orders a reading stamped ahead of its arrival by its arrival, so the next one replaces it', () => {
    const store = new StateStore(recordingRegistry() as unknown as Registry)
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 30 }], 240_000, 1000)
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 20 }], 2000, 2000)
    expect(store.get('dev-1')!.readings.get('temperature')).toMatchObject({ value: 20, ts: 2000 })
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 18 }], 1500, 2500)
    expect(store.get('dev-1')!.readings.get('temperature')).toMatchObject({ value: 20, ts: 2000 })
  })

  it('forgets on release the readings that arrived before it, stamped ahead or not, and keeps those that came after', () => {
    const store = new StateStore(recordingRegistry() as unknown as Registry)
    store.applyReadings('dev-1', [{ capability: 'temperature', value: 30 }], 1_000_000, 1000)
    store.applyReadings('dev-1', [{ capability: 'humidity', value: 40 }], 900, 900)
    store.applyReadings('dev-1', [{ capability: 'battery', value: 80 }], 3000, 3000)
    store.forgetReadingsBefore('dev-1', 2000)
    expect([...store.get('dev-1')!.readings.keys()]).toEqual(['battery'])
  })
})

describe('state store readings', () => {
  it('gives a device its own readings at its first report, leaving the idle devices with none', () => {
    const store = new StateStore(recordingRegistry() as unknown as Registry, 60_000, 100)
    store.setPresence('dev-idle', true, 1_800_000_000_000)
    store.setPresence('dev-busy', true, 1_800_000_000_000)
    store.applyReadings('dev-busy', [{ capability: 'temperature', value: 21.5 }], 1_800_000_000_000, 1_800_000_000_000)
    store.setPresence('dev-late', true, 1_800_000_000_000)
    store.forgetReadingsBefore('dev-idle', 1_900_000_000_000)
    expect([...store.get('dev-busy')!.readings.keys()]).toEqual(['temperature'])
    expect(store.get('dev-idle')!.readings.size).toBe(0)
    expect(store.get('dev-late')!.readings.size).toBe(0)
    store.applyReadings('dev-late', [{ capability: 'humidity', value: 40 }], 1_800_000_000_000, 1_800_000_000_000)
    expect([...store.get('dev-late')!.readings.keys()]).toEqual(['humidity'])
    expect(store.get('dev-idle')!.readings.size).toBe(0)
    expect([...store.get('dev-busy')!.readings.keys()]).toEqual(['temperature'])
  })
})
