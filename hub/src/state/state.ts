import { EventEmitter } from 'node:events'
import type { ReadingValue } from '@trellis/device-sdk'
import type { Reading } from '../normalize/index.js'
import type { Registry, StoredState } from '../registry/registry.js'

export interface CapabilityState {
  value: ReadingValue
  /** The reading's own timestamp, as shown. */
  ts: number
  /**
   * What orders readings: their timestamp, or their arrival when stamped
   * ahead of it, so that a clock running ahead (within the skew ingest
   * allows) cannot hold the latest state until real time catches up.
   */
  rank: number
}

export interface DeviceState {
  online: boolean
  /** epoch ms of the last message of any kind, or null. */
  lastSeen: number | null
  /** Changed only by the store: until a first reading, one empty map shared by every device. */
  readings: ReadonlyMap<string, CapabilityState>
}

/**
 * The readings of a device that has reported none. A device that connects and
 * stays idle gets a state (its presence) but no map of its own: an empty Map
 * costs some 180 bytes, a tenth of what the hub holds per idle device beyond aedes.
 */
const NO_READINGS: ReadonlyMap<string, CapabilityState> = new Map()

/** The store's own view of a state: its readings map is one it may change, once it has its own. */
interface HeldState extends DeviceState { readings: Map<string, CapabilityState> }

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
  private readonly devices = new Map<string, HeldState>()
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private persisting: Promise<void> | null = null

  /**
   * Every `persistIntervalMs` (default 10 s), changed states are written,
   * `persistChunk` devices per statement. What a crash loses in between is only
   * the latest values shown before the devices report again (the readings
   * themselves are in InfluxDB); a thousand devices reporting all the time
   * cost the embedded registry, on the hub's thread, 45 ms a round.
   */
  constructor (private readonly registry: Registry, private readonly persistIntervalMs = 10_000, private readonly persistChunk = 100) { super() }

  async load (): Promise<void> {
    for (const s of await this.registry.loadStates()) {
      const loaded = Date.now()
      const entries = Object.entries(s.state)
      const readings = entries.length === 0 ? NO_READINGS as Map<string, CapabilityState> : new Map<string, CapabilityState>()
      for (const [cap, v] of entries) {
        const ts = Date.parse(v.ts)
        readings.set(cap, { value: v.value as ReadingValue, ts, rank: Math.min(ts, loaded) })
      }
      // Nobody is online until they say so again after a restart.
      this.devices.set(s.deviceId, { online: false, lastSeen: s.lastSeen ? Date.parse(s.lastSeen) : null, readings })
    }
    this.timer = setInterval(() => { void this.persist() }, this.persistIntervalMs)
    this.timer.unref()
  }

  get (deviceId: string): DeviceState | undefined {
    return this.devices.get(deviceId)
  }

  private entry (deviceId: string): HeldState {
    let s = this.devices.get(deviceId)
    if (!s) {
      s = { online: false, lastSeen: null, readings: NO_READINGS as Map<string, CapabilityState> }
      this.devices.set(deviceId, s)
    }
    return s
  }

  /**
   * Applies readings taken at `ts` and received at `now`; an older reading
   * never replaces a newer one, and one stamped ahead of `now` counts as taken
   * at `now` (see `CapabilityState.rank`).
   */
  applyReadings (deviceId: string, readings: readonly Reading[], ts: number, now = Date.now()): void {
    const rank = ts < now ? ts : now
    const s = this.entry(deviceId)
    s.lastSeen = now
    if (!s.online) this.setPresence(deviceId, true, now)
    let changed: Record<string, { value: ReadingValue, ts: string }> | null = null
    const wanted = this.listenerCount('readings') > 0
    for (const r of readings) {
      const prev = s.readings.get(r.capability)
      if (prev) {
        if (prev.rank > rank) continue
        // In place: a new object per reading would outlive the young generation and load the old one.
        prev.value = r.value
        prev.ts = ts
        prev.rank = rank
      } else {
        if (s.readings === NO_READINGS) s.readings = new Map()
        s.readings.set(r.capability, { value: r.value, ts, rank })
      }
      if (wanted) (changed ??= {})[r.capability] = { value: r.value, ts: new Date(ts).toISOString() }
    }
    this.dirty.add(deviceId)
    if (changed) this.emit('readings', { kind: 'state', deviceId, readings: changed } satisfies ReadingsChange)
  }

  /**
   * Forgets the device's latest readings that arrived by `at` (a release: they
   * were its previous owner's, even those stamped ahead of it); presence,
   * last-seen and readings that came later stay.
   */
  forgetReadingsBefore (deviceId: string, at: number): void {
    const s = this.devices.get(deviceId)
    if (!s) return
    for (const [cap, reading] of s.readings) {
      if (reading.rank > at) continue
      s.readings.delete(cap)
      this.dirty.add(deviceId)
    }
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

  /**
   * Writes changed states to the registry, `persistChunk` devices per
   * statement, letting I/O run between statements: the embedded registry runs
   * on this thread, and one statement for a thousand devices held every
   * socket for some 45 ms.
   */
  async persist (): Promise<void> {
    while (this.persisting) await this.persisting
    if (this.dirty.size === 0) return
    this.persisting = this.persistDirty().finally(() => { this.persisting = null })
    await this.persisting
  }

  /** Writes the states changed so far; those that change meanwhile wait for the next round. */
  private async persistDirty (): Promise<void> {
    const ids = [...this.dirty]
    this.dirty.clear()
    for (let from = 0; from < ids.length; from += this.persistChunk) {
      if (from > 0) await new Promise((resolve) => setImmediate(resolve))
      const chunk = ids.slice(from, from + this.persistChunk)
      const states: StoredState[] = []
      for (const id of chunk) {
        const s = this.devices.get(id)
        if (!s) continue
        const state: StoredState['state'] = {}
        for (const [cap, v] of s.readings) state[cap] = { value: v.value, ts: new Date(v.ts).toISOString() }
        states.push({ deviceId: id, online: s.online, lastSeen: s.lastSeen === null ? null : new Date(s.lastSeen).toISOString(), state })
      }
      try {
        await this.registry.saveStates(states)
      } catch (err) {
        for (const id of ids.slice(from)) this.dirty.add(id)
        this.emit('error', err)
        return
      }
    }
  }

  async close (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.persist()
  }
}
