import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { resolveCapabilities } from '@trellis/device-sdk'
import { DeviceDirectory } from '../../hub/src/registry/directory.js'
import type { Model, Registry } from '../../hub/src/registry/registry.js'

/** A registry whose model reads wait until the test releases them, and which counts them. */
class SlowRegistry extends EventEmitter {
  mapping: unknown = { format: 'json', readings: [{ path: 'old', capability: 'temperature' }] }
  modelReads = 0
  private waiting: Array<() => void> = []

  async getDevice (id: string) { return { id, modelId: 'md-1', makerId: 'mk-1', ownerId: null, disabled: false, createdAt: '', claimedAt: null } }
  async deviceCredentials () { return { secretHash: 'x', disabled: false } }
  async getModel (id: string): Promise<Model> {
    this.modelReads++
    const snapshot = this.mapping
    await new Promise<void>((resolve) => this.waiting.push(resolve))
    return { id, makerId: 'mk-1', name: 'probe', capabilities: ['temperature'], resolved: resolveCapabilities(['temperature']), mapping: snapshot, heartbeatSeconds: null, createdAt: '', updatedAt: '' }
  }

  /** Lets the pending model read finish, once one is pending (the directory reads the device first). */
  async release () {
    for (let i = 0; i < 100 && this.waiting.length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
    if (this.waiting.length === 0) throw new Error('no model read is pending')
    for (const r of this.waiting.splice(0)) r()
  }
}

const pathOf = (ctx: Awaited<ReturnType<DeviceDirectory['get']>>) => (ctx?.model.mapping?.source?.readings[0] as { path: string }).path

describe('the device directory', () => {
  it('compiles a model once and serves it from the cache', async () => {
    const registry = new SlowRegistry()
    const directory = new DeviceDirectory(registry as unknown as Registry)
    const first = directory.get('dev-1')
    await registry.release()
    expect(pathOf(await first)).toBe('old')
    expect(pathOf(await directory.get('dev-1'))).toBe('old')
    expect(directory.peek('dev-1')?.model).toBe((await first)?.model)
    expect(registry.modelReads).toBe(1)
  })

  it('does not cache a model read before a mapping change that lands while it loads', async () => {
    const registry = new SlowRegistry()
    const directory = new DeviceDirectory(registry as unknown as Registry)
    const stale = directory.get('dev-1')
    for (let i = 0; i < 100 && registry.modelReads === 0; i++) await new Promise((resolve) => setImmediate(resolve))
    // The mapping is replaced while the old one is being read.
    registry.mapping = { format: 'json', readings: [{ path: 'new', capability: 'temperature' }] }
    registry.emit('model-changed', 'md-1')
    await registry.release()
    expect(pathOf(await stale)).toBe('old')
    expect(directory.peek('dev-1')).toBeUndefined()

    const fresh = directory.get('dev-1')
    await registry.release()
    expect(pathOf(await fresh)).toBe('new')
    expect(pathOf(directory.peek('dev-1')!)).toBe('new')
  })
})

describe("a gateway's children", () => {
  class ChildRegistry extends EventEmitter {
    childQueries = 0
    ids = ['dev-a', 'dev-b']
    async childIds (gatewayId: string): Promise<string[]> {
      this.childQueries++
      return gatewayId === 'gw-1' ? [...this.ids] : []
    }
  }

  it('are read with one query per gateway, so entries naming strangers cost no lookup, until more are provisioned under it', async () => {
    const registry = new ChildRegistry()
    const directory = new DeviceDirectory(registry as unknown as Registry)
    const [first, second] = await Promise.all([directory.childrenOf('gw-1'), directory.childrenOf('gw-1')])
    expect([...first]).toEqual(['dev-a', 'dev-b'])
    expect(second).toBe(first)
    for (let i = 0; i < 1000; i++) expect(directory.knownChildren('gw-1')?.has(`dev-stranger-${i}`)).toBe(false)
    expect(registry.childQueries).toBe(1)

    registry.ids.push('dev-c')
    registry.emit('gateway-changed', 'gw-1')
    expect(directory.knownChildren('gw-1')).toBeUndefined()
    expect((await directory.childrenOf('gw-1')).has('dev-c')).toBe(true)
    expect(registry.childQueries).toBe(2)
  })
})
