import { EventEmitter } from 'node:events'
import type { ReadingValue } from '@trellis/device-sdk'
import type { Reading } from '../normalize/index.js'
import type { Registry, StoredState } from '../registry/registry.js'

export interface CapabilityState { value: ReadingValue, ts: number }

export interface DeviceState {
  online: boolean
  /** epoch ms of the last message of any kind, or null. */
  lastSeen: number | null
  readings: Map<string, CapabilityState>
}

export interface ReadingsChange { kind: 'state', deviceId: string, readings: Record<string, { value: ReadingValue, ts: string }> }
export interface PresenceChange { kind: 'presence', deviceId: string, online: boolean, at: string }
export type StateChange = ReadingsChange | PresenceChange

/**
 * The latest state of every device, in memory, persisted to the registry in
 * the background. Emits `presence` (PresenceChange) and `readings`
 * (ReadingsChange); the latter is built only while someone listens, since it
 * would otherwise cost an object and a date string per reading on the ingest path.
 */
export class StateStore extends EventEmitter {
  private readonly devices = new Map<string, DeviceState>()
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly registry: Registry, private readonly persistIntervalMs = 2000) { super() }

  async load (): Promise<void> {
    for (const s of await this.registry.loadStates()) {
      const readings = new Map<string, CapabilityState>()
      for (const [cap, v] of Object.entries(s.state)) readings.set(cap, { value: v.value as ReadingValue, ts: Date.parse(v.ts) })
      // Nobody is online until they say so again after a restart.
      this.devices.set(s.deviceId, { online: false, lastSeen: s.lastSeen ? Date.parse(s.lastSeen) : null, readings })
    }
    this.timer = setInterval(() => { void this.persist() }, this.persistIntervalMs)
    this.timer.unref()
  }

  get (deviceId: string): DeviceState | undefined {
    return this.devices.get(deviceId)
  }

  private entry (deviceId: string): DeviceState {
    let s = this.devices.get(deviceId)
    if (!s) {
      s = { online: false, lastSeen: null, readings: new Map() }
      this.devices.set(deviceId, s)
    }
    return s
  }

  /** Applies readings taken at `ts`; an older reading never replaces a newer one. */
  applyReadings (deviceId: string, readings: readonly Reading[], ts: number, now = Date.now()): void {
    const s = this.entry(deviceId)
    s.lastSeen = now
    if (!s.online) this.setPresence(deviceId, true, now)
    let changed: Record<string, { value: ReadingValue, ts: string }> | null = null
    const wanted = this.listenerCount('readings') > 0
    for (const r of readings) {
      const prev = s.readings.get(r.capability)
      if (prev && prev.ts > ts) continue
      s.readings.set(r.capability, { value: r.value, ts })
      if (wanted) (changed ??= {})[r.capability] = { value: r.value, ts: new Date(ts).toISOString() }
    }
    this.dirty.add(deviceId)
    if (changed) this.emit('readings', { kind: 'state', deviceId, readings: changed } satisfies ReadingsChange)
  }

  /** Records that the device was heard from. */
  touch (deviceId: string, now = Date.now()): void {
    const s = this.entry(deviceId)
    s.lastSeen = now
    this.dirty.add(deviceId)
    // Any message proves the device is back, after a staleness sweep took it offline.
    if (!s.online) this.setPresence(deviceId, true, now)
  }

  setPresence (deviceId: string, online: boolean, now = Date.now()): void {
    const s = this.entry(deviceId)
    if (online) s.lastSeen = now
    if (s.online === online) return
    s.online = online
    this.dirty.add(deviceId)
    this.emit('presence', { kind: 'presence', deviceId, online, at: new Date(now).toISOString() } satisfies PresenceChange)
  }

  /** Writes changed states to the registry. */
  async persist (): Promise<void> {
    if (this.dirty.size === 0) return
    const ids = [...this.dirty]
    this.dirty.clear()
    const states: StoredState[] = []
    for (const id of ids) {
      const s = this.devices.get(id)
      if (!s) continue
      const state: StoredState['state'] = {}
      for (const [cap, v] of s.readings) state[cap] = { value: v.value, ts: new Date(v.ts).toISOString() }
      states.push({ deviceId: id, online: s.online, lastSeen: s.lastSeen === null ? null : new Date(s.lastSeen).toISOString(), state })
    }
    try {
      await this.registry.saveStates(states)
    } catch (err) {
      for (const id of ids) this.dirty.add(id)
      this.emit('error', err)
    }
  }

  async close (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.persist()
  }
}
