import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InProcessBus } from '@trellis/broker'
import { ClusterBus } from '../../hub/src/cluster/cluster-bus.js'
import { StateSync } from '../../hub/src/cluster/state-sync.js'
import { StateStore } from '../../hub/src/state/state.js'
import type { Registry } from '../../hub/src/registry/registry.js'
import { startTestRedis, type TestRedis } from '../support/redis.js'
import { FakeBus } from '../support/fake-bus.js'
import { testLogger } from '../support/stack.js'
import { eventually } from '../support/wait.js'

// Two nodes' cluster parts on a real Redis that restarts empty, as a Redis without persistence does.
// When it comes back, a node's liveness may take the other for dead before that one has set its key
// again, and forget its devices (forgetNode): the node back on Redis must tell them again.
let redis: TestRedis
const closing: Array<() => Promise<void>> = []

beforeAll(async () => { redis = await startTestRedis() })
afterAll(async () => {
  for (const close of closing) await close()
  await redis?.dispose()
})

const memoryRegistry = { loadStates: async () => [], saveStates: async () => {} } as unknown as Registry

describe('a node back from a Redis outage', () => {
  it('tells the other nodes again which of its devices take commands', async () => {
    const hereA = new FakeBus()
    const a = await ClusterBus.start(hereA as unknown as InProcessBus, redis.url, 'node-a', testLogger())
    const b = await ClusterBus.start(new FakeBus() as unknown as InProcessBus, redis.url, 'node-b', testLogger())
    closing.push(async () => await a.close(), async () => await b.close())
    hereA.connect('dev-1', true)
    await eventually(async () => b.canReceiveCommands('dev-1'), (ready) => ready, { what: 'dev-1 ready for commands through node B' })

    await redis.stop()
    b.forgetNode('node-a')
    expect(b.canReceiveCommands('dev-1')).toBe(false)
    await redis.restart()
    await eventually(async () => b.canReceiveCommands('dev-1'), (ready) => ready, { what: 'dev-1 ready through node B again', timeoutMs: 10_000 })
  })

  it('tells the other nodes again which of its devices are online', async () => {
    const hereA = new FakeBus()
    const stateA = new StateStore(memoryRegistry, 60_000)
    const stateB = new StateStore(memoryRegistry, 60_000)
    const a = await StateSync.start(redis.url, stateA, hereA, testLogger())
    const b = await StateSync.start(redis.url, stateB, new FakeBus(), testLogger())
    closing.push(async () => await a.close(), async () => await b.close(), async () => await stateA.close(), async () => await stateB.close())
    hereA.connect('dev-2')
    stateA.setPresence('dev-2', true)
    await eventually(async () => stateB.get('dev-2')?.online, (online) => online === true, { what: 'dev-2 online on node B' })

    await redis.stop()
    b.forgetNode(a.node)
    expect(stateB.get('dev-2')?.online).toBe(false)
    await redis.restart()
    await eventually(async () => stateB.get('dev-2')?.online, (online) => online === true, { what: 'dev-2 online on node B again', timeoutMs: 10_000 })
  })
})
