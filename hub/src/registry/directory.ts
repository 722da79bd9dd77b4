import type { Series } from '../store/points.js'
import { compileModel, type CompiledModel, type ModelCompiler } from '../normalize/model.js'
import type { DeviceCredentials, DeviceEntry, DeviceRecord, Registry } from './registry.js'
import { safeEqualHex, sha256Hex } from './secrets.js'

// The compiled model lives in normalize/; the registry caches what normalize compiles. Re-exported for the modules that take it with a device.
export type { CompiledModel } from '../normalize/model.js'

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
  /** The gateway it was provisioned under: only that gateway may report its readings. Null or absent for a device that connects itself. */
  readonly gatewayId?: string | null
  /** The IANA zone its local times without an offset are read in, before its model's mapping's. Null or absent: the mapping's. */
  readonly timeZone?: string | null
  /** Its tags in InfluxDB, made once here so that ingest builds none per message. */
  readonly series: Series
}

/**
 * A cache of device → model → mapping in front of the registry, kept fresh by
 * the registry's change events. Lookups after the first are synchronous.
 */
export class DeviceDirectory {
  private readonly devices = new Map<string, DeviceContext>()
  private readonly models = new Map<string, CompiledModel>()
  private readonly loading = new Map<string, Promise<DeviceContext | null>>()
  /**
   * Bumped on every change event. A load that read the registry before a
   * change must not cache what it read after it, or a replaced mapping
   * could stay in use until the next change.
   */
  private generation = 0

  /** Each gateway's children, read once: an entry naming any other device is refused from memory. */
  private readonly children = new Map<string, Promise<ReadonlySet<string>>>()
  private readonly childrenLoaded = new Map<string, ReadonlySet<string>>()

  constructor (private readonly registry: Registry, private readonly compile: ModelCompiler = compileModel) {
    registry.on('gateway-changed', (gatewayId: string) => {
      this.children.delete(gatewayId)
      this.childrenLoaded.delete(gatewayId)
    })
    registry.on('device-changed', (id: string) => {
      this.generation++
      this.devices.delete(id)
      this.loading.delete(id)
    })
    registry.on('model-changed', (id: string) => {
      this.generation++
      this.models.delete(id)
      for (const [deviceId, ctx] of this.devices) if (ctx.model.id === id) this.devices.delete(deviceId)
      this.loading.clear()
    })
  }

  /** The ids of the devices provisioned under a gateway, with one query per gateway until more are provisioned under it. */
  async childrenOf (gatewayId: string): Promise<ReadonlySet<string>> {
    let pending = this.children.get(gatewayId)
    if (!pending) {
      const loading = this.registry.childIds(gatewayId).then((ids) => {
        const set = new Set(ids)
        if (this.children.get(gatewayId) === loading) this.childrenLoaded.set(gatewayId, set)
        return set
      }, (err: unknown) => {
        if (this.children.get(gatewayId) === loading) this.children.delete(gatewayId)
        throw err
      })
      this.children.set(gatewayId, pending = loading)
    }
    return await pending
  }

  /** A gateway's children when already read, for the hot path. */
  knownChildren (gatewayId: string): ReadonlySet<string> | undefined {
    return this.childrenLoaded.get(gatewayId)
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
      const loading: Promise<DeviceContext | null> = this.load(id).finally(() => {
        if (this.loading.get(id) === loading) this.loading.delete(id)
      })
      this.loading.set(id, pending = loading)
    }
    return await pending
  }

  async model (id: string): Promise<CompiledModel | null> {
    const cached = this.models.get(id)
    if (cached) return cached
    const generation = this.generation
    const model = await this.registry.getModel(id)
    if (!model) return null
    const compiled = this.compile(model)
    if (generation === this.generation) this.models.set(id, compiled)
    return compiled
  }

  /** `authenticate` without a lookup: undefined when the device is not in memory. */
  authenticateFromMemory (id: string, secret: string): boolean | undefined {
    const ctx = this.devices.get(id)
    if (!ctx) return undefined
    return !ctx.disabled && safeEqualHex(sha256Hex(secret), ctx.secretHash)
  }

  /** True when `secret` is the device's current secret and the device is enabled. */
  async authenticate (id: string, secret: string): Promise<boolean> {
    const ctx = await this.get(id)
    if (!ctx || ctx.disabled) return false
    return safeEqualHex(sha256Hex(secret), ctx.secretHash)
  }

  /**
   * Forgets every device, model and gateway it holds: for a node back from a
   * Redis outage, which may have missed the other nodes' change events. The
   * next lookup of each reads the registry again.
   */
  forgetAll (): void {
    this.generation++
    this.devices.clear()
    this.models.clear()
    this.loading.clear()
    this.children.clear()
    this.childrenLoaded.clear()
  }

  invalidateDevice (id: string): void {
    this.generation++
    this.devices.delete(id)
    this.loading.delete(id)
  }

  /**
   * The contexts of a page of devices that the registry listed with their
   * credentials: cached ones as they are, the others built from the listing,
   * with the models not yet compiled loaded in one query. No query per device.
   */
  async fromListing (entries: readonly DeviceEntry[]): Promise<DeviceContext[]> {
    const generation = this.generation
    const missing = [...new Set(entries.filter((e) => !this.devices.has(e.record.id) && !this.models.has(e.record.modelId)).map((e) => e.record.modelId))]
    const loaded = new Map<string, CompiledModel>()
    for (const model of await this.registry.getModels(missing)) {
      const compiled = this.compile(model)
      loaded.set(model.id, compiled)
      if (generation === this.generation) this.models.set(model.id, compiled)
    }
    const out: DeviceContext[] = []
    for (const { record, credentials } of entries) {
      const cached = this.devices.get(record.id)
      if (cached) { out.push(cached); continue }
      const model = this.models.get(record.modelId) ?? loaded.get(record.modelId)
      if (!model) continue
      const ctx = contextOf(record, credentials, model)
      if (generation === this.generation) this.devices.set(record.id, ctx)
      out.push(ctx)
    }
    return out
  }

  private async load (id: string): Promise<DeviceContext | null> {
    const generation = this.generation
    const [device, credentials] = await Promise.all([this.registry.getDevice(id), this.registry.deviceCredentials(id)])
    if (!device || !credentials) return null
    const model = await this.model(device.modelId)
    if (!model) return null
    const ctx = contextOf(device, credentials, model)
    if (generation === this.generation) this.devices.set(id, ctx)
    return ctx
  }
}

function contextOf (device: DeviceRecord, credentials: DeviceCredentials, model: CompiledModel): DeviceContext {
  return {
    id: device.id,
    makerId: device.makerId,
    ownerId: device.ownerId,
    model,
    secretHash: credentials.secretHash,
    disabled: device.disabled,
    releasedAt: device.releasedAt ? Date.parse(device.releasedAt) : null,
    gatewayId: device.gatewayId,
    timeZone: device.timeZone,
    series: { device: device.id, model: model.id, maker: device.makerId },
  }
}
