import type { CapabilityName, ModelCapability } from '@trellis/device-sdk'
import type { Model, Registry } from './registry.js'
import { safeEqualHex, sha256Hex } from './secrets.js'

/** A model ready for the hot path: capabilities by name, mapping compiled once. */
export interface CompiledModel {
  readonly id: string
  readonly name: string
  readonly makerId: string
  readonly capabilities: ReadonlyMap<CapabilityName, ModelCapability>
  readonly mapping: unknown | null
}

/** Everything ingest needs to know of a device, without a query per message. */
export interface DeviceContext {
  readonly id: string
  readonly makerId: string
  readonly ownerId: string | null
  readonly model: CompiledModel
  readonly secretHash: string
  readonly disabled: boolean
  /** Epoch ms of its last release by an owner; an owner sees nothing from before it. */
  readonly releasedAt: number | null
}

export type ModelCompiler = (model: Model) => CompiledModel

export const compileCanonical: ModelCompiler = (model) => ({
  id: model.id,
  name: model.name,
  makerId: model.makerId,
  capabilities: new Map(model.resolved.map((c) => [c.name, c])),
  mapping: model.mapping,
})

/**
 * A cache of device → model → mapping in front of the registry, kept fresh by
 * the registry's change events. Lookups after the first are synchronous.
 */
export class DeviceDirectory {
  private readonly devices = new Map<string, DeviceContext>()
  private readonly models = new Map<string, CompiledModel>()
  private readonly loading = new Map<string, Promise<DeviceContext | null>>()
  /** Bumped on each change, so a load that read the row before the change does not cache it after. */
  private readonly generations = new Map<string, number>()

  constructor (private readonly registry: Registry, private readonly compile: ModelCompiler = compileCanonical) {
    registry.on('device-changed', (id: string) => this.invalidateDevice(id))
    registry.on('model-changed', (id: string) => {
      this.models.delete(id)
      for (const [deviceId, ctx] of this.devices) if (ctx.model.id === id) this.devices.delete(deviceId)
    })
  }

  /** The cached context, if loaded. */
  peek (id: string): DeviceContext | undefined {
    return this.devices.get(id)
  }

  async get (id: string): Promise<DeviceContext | null> {
    const cached = this.devices.get(id)
    if (cached) return cached
    let pending = this.loading.get(id)
    if (!pending) {
      pending = this.load(id).finally(() => this.loading.delete(id))
      this.loading.set(id, pending)
    }
    return await pending
  }

  async model (id: string): Promise<CompiledModel | null> {
    const cached = this.models.get(id)
    if (cached) return cached
    const model = await this.registry.getModel(id)
    if (!model) return null
    const compiled = this.compile(model)
    this.models.set(id, compiled)
    return compiled
  }

  /** True when `secret` is the device's current secret and the device is enabled. */
  async authenticate (id: string, secret: string): Promise<boolean> {
    const ctx = await this.get(id)
    if (!ctx || ctx.disabled) return false
    return safeEqualHex(sha256Hex(secret), ctx.secretHash)
  }

  invalidateDevice (id: string): void {
    this.devices.delete(id)
    this.loading.delete(id)
    this.generations.set(id, (this.generations.get(id) ?? 0) + 1)
  }

  private async load (id: string): Promise<DeviceContext | null> {
    const generation = this.generations.get(id)
    const [device, credentials] = await Promise.all([this.registry.getDevice(id), this.registry.deviceCredentials(id)])
    if (!device || !credentials) return null
    const model = await this.model(device.modelId)
    if (!model) return null
    const ctx: DeviceContext = {
      id,
      makerId: device.makerId,
      ownerId: device.ownerId,
      model,
      secretHash: credentials.secretHash,
      disabled: device.disabled,
      releasedAt: device.releasedAt ? Date.parse(device.releasedAt) : null,
    }
    if (this.generations.get(id) === generation) this.devices.set(id, ctx)
    return ctx
  }
}
