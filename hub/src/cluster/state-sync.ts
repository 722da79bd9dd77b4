import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { clusterRedis, endRedis, rejoinAfterOutage, warnEveryMinute } from '@trellis/broker'
import type { Logger } from 'pino'
import type { CapabilityName } from '@trellis/device-sdk'
import type { PresenceChange, ReadingsChange, StateStore } from '../state/state.js'

/** The Redis channel every node of a cluster publishes its state changes on. */
export const STATE_CHANNEL = 'trellis:state'
/** The Redis channel a node tells the others what it spent of the API's rate limits on (logins, claims, sign-ups). */
export const THROTTLE_CHANNEL = 'trellis:throttle'
/** The Redis channel a node announces a change of owners' rules on (`<node> <what>`): the others read them again. */
export const RULES_CHANNEL = 'trellis:rules'

/**
 * The Redis channel a node announces a change of the registry on (`<node> <event> <id>`):
 * the others drop what they hold in memory of that device, model or token.
 */
export const REGISTRY_CHANNEL = 'trellis:registry'
const CHANNELS = [STATE_CHANNEL, RULES_CHANNEL, THROTTLE_CHANNEL, REGISTRY_CHANNEL]

/**
 * The registry's events every node must hear: each node caches devices
 * (owner, secret, model), compiled models and tokens, and a release, a
 * rotated secret or a revoked token made through one node must end the old
 * access through all of them.
 */
export const RELAYED_REGISTRY_EVENTS = ['device-changed', 'model-changed', 'gateway-changed', 'credentials-changed', 'token-revoked'] as const
export type RelayedRegistryEvent = typeof RELAYED_REGISTRY_EVENTS[number]

/** Owners' rules that every node arms: a change on one node is read again by the others. */
export type RuleKind = 'schedules' | 'automations'

interface StateMessage { node: string, change: ReadingsChange | PresenceChange }
/** A node back from a Redis outage asks the others to say again which devices they hold. */
interface ResyncMessage { node: string, resync: true }

/** What the node's broker holds, for telling the others. */
export interface DevicesHere {
  isConnectedHere (deviceId: string): boolean
  devicesHere (): Iterable<string>
}

/**
 * Keeps every node's latest state and presence the same: what changes on the
 * node a device is connected to (its readings, its presence) is published on
 * Redis, and applied by the others, whose live streams then carry it. The
 * registry's copy is written by every node (same values; the last wins).
 */
export class StateSync {
  readonly node = randomBytes(8).toString('hex')
  private readonly pub: Redis
  private readonly sub: Redis
  /** Every reading and every rate-limited request fails to be shared while Redis is away: warned of once a minute. */
  private readonly stateNotShared: (err: Error) => void
  private readonly spendNotShared: (err: Error) => void
  /** Set while a change from another node is applied: it is not published again. */
  private applying = false
  private closed = false
  /** Called when another node changed schedules or automations. */
  onRulesChanged: ((kind: RuleKind) => void) | null = null
  /** Called with what another node spent of a rate limit. */
  onSpent: ((kind: string, keys: string[]) => void) | null = null
  /** Called when this node is back on Redis after losing it: what the others announced meanwhile was not heard. */
  onRejoined: (() => void) | null = null
  /** Called when another node's registry emitted one of `RELAYED_REGISTRY_EVENTS`. */
  onRegistryChanged: ((event: RelayedRegistryEvent, id: string) => void) | null = null

  /** Whether this node reaches Redis now: its state goes out and the others' comes in. */
  get redisUp (): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready'
  }

  private constructor (redisUrl: string, private readonly state: StateStore, private readonly here: DevicesHere, private readonly log: Logger) {
    this.pub = clusterRedis(redisUrl, log, 'state, publishing')
    this.sub = clusterRedis(redisUrl, log, 'state, subscribed')
    this.rejoin = rejoinAfterOutage(this.sub, CHANNELS, log, 'state', async () => {
      this.onRejoined?.()
      this.reannounce()
      await this.pub.publish(STATE_CHANNEL, JSON.stringify({ node: this.node, resync: true } satisfies ResyncMessage))
    })
    this.stateNotShared = warnEveryMinute(log, 'state changes not shared with the other nodes')
    this.spendNotShared = warnEveryMinute(log, 'rate limit spends not shared with the other nodes')
  }

  /** Subscribes (resolves once Redis confirmed) and starts publishing this node's changes. */
  static async start (redisUrl: string, state: StateStore, here: DevicesHere, log: Logger): Promise<StateSync> {
    const sync = new StateSync(redisUrl, state, here, log)
    sync.sub.on('message', sync.onMessage)
    await sync.sub.subscribe(...CHANNELS)
    state.on('readings', sync.onLocal)
    state.on('presence', sync.onLocal)
    return sync
  }

  /** Forgets the outage handler at close. */
  private readonly rejoin: () => void

  private connectedHere (deviceId: string): boolean {
    return this.here.isConnectedHere(deviceId)
  }

  /** Says again that this node's devices are online: the others may have taken them offline while Redis was away. */
  private reannounce (): void {
    if (this.closed) return
    const at = new Date().toISOString()
    for (const deviceId of this.here.devicesHere()) {
      if (!this.state.get(deviceId)?.online) continue
      const change: PresenceChange = { kind: 'presence', deviceId, online: true, at }
      this.pub.publish(STATE_CHANNEL, JSON.stringify({ node: this.node, change } satisfies StateMessage)).catch(this.stateNotShared)
    }
  }

  private readonly onLocal = (change: ReadingsChange | PresenceChange) => {
    if (this.applying || this.closed) return
    // A device that moved away from this node is offline here, not in the cluster: its new node says so.
    if (change.kind === 'presence' && !change.online && !this.connectedHere(change.deviceId) && this.heldElsewhere.has(change.deviceId)) {
      queueMicrotask(() => this.applyRemote(() => this.state.setPresence(change.deviceId, true)))
      return
    }
    this.pub.publish(STATE_CHANNEL, JSON.stringify({ node: this.node, change } satisfies StateMessage)).catch(this.stateNotShared)
  }

  /** Devices another node last said were online, with that node. */
  private readonly heldElsewhere = new Map<string, string>()

  /** The other nodes said to hold devices now. */
  holders (): Iterable<string> {
    return this.heldElsewhere.values()
  }

  /**
   * A node died (see `NodeLiveness`): the devices it held and that did not
   * come back here or elsewhere go offline on this node, which does not publish it.
   */
  forgetNode (node: string): void {
    for (const [deviceId, holder] of [...this.heldElsewhere]) {
      if (holder !== node) continue
      this.heldElsewhere.delete(deviceId)
      if (this.connectedHere(deviceId)) continue
      this.applyRemote(() => this.state.setPresence(deviceId, false))
    }
  }

  /** Tells the other nodes that schedules or automations changed here. */
  announceRules (kind: RuleKind): void {
    if (this.closed) return
    this.pub.publish(RULES_CHANNEL, `${this.node} ${kind}`).catch((err: Error) => this.log.warn({ err, kind }, 'rule change not announced'))
  }

  /**
   * Tells the other nodes what this one spent of a rate limit: a budget is
   * then one across the cluster. Resolves once Redis has handed it to them
   * (it writes to its subscribers before it answers PUBLISH), or after 1 s
   * with Redis away: a refusal that waits for it is not overtaken by the next
   * attempt at another node.
   */
  async announceSpent (kind: string, keys: string[]): Promise<void> {
    if (this.closed) return
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, 1_000) })
    const published = this.pub.publish(THROTTLE_CHANNEL, JSON.stringify({ node: this.node, kind, keys })).then(() => {}, this.spendNotShared)
    await Promise.race([published, late])
    clearTimeout(timer)
  }

  /** Tells the other nodes that the registry changed here. */
  announceRegistry (event: RelayedRegistryEvent, id: string): void {
    if (this.closed) return
    this.pub.publish(REGISTRY_CHANNEL, `${this.node} ${event} ${id}`).catch((err: Error) => this.log.error({ err, event, id }, 'registry change not announced: other nodes keep the old until they reload it'))
  }

  private readonly onMessage = (channel: string, raw: string) => {
    if (channel === REGISTRY_CHANNEL) {
      const [node, event, id] = raw.split(' ')
      if (node !== this.node && id && (RELAYED_REGISTRY_EVENTS as readonly string[]).includes(event)) this.onRegistryChanged?.(event as RelayedRegistryEvent, id)
      return
    }
    if (channel === RULES_CHANNEL) {
      const [node, kind] = raw.split(' ')
      if (node !== this.node && (kind === 'schedules' || kind === 'automations')) this.onRulesChanged?.(kind)
      return
    }
    if (channel === THROTTLE_CHANNEL) {
      try {
        const spent = JSON.parse(raw) as { node: string, kind: string, keys: string[] }
        if (spent.node !== this.node && Array.isArray(spent.keys)) this.onSpent?.(spent.kind, spent.keys)
      } catch {}
      return
    }
    let message: StateMessage | ResyncMessage
    try {
      message = JSON.parse(raw) as StateMessage | ResyncMessage
    } catch {
      return
    }
    if (message.node === this.node) return
    // Another node is back from a Redis outage: it may have taken this node's devices offline.
    if ('resync' in message) return this.reannounce()
    const { change } = message
    if (change.kind === 'presence') {
      if (change.online) this.heldElsewhere.set(change.deviceId, message.node)
      else if (this.heldElsewhere.get(change.deviceId) === message.node) this.heldElsewhere.delete(change.deviceId)
      // A late "offline" from the node it left must not hide a device connected here.
      if (!change.online && this.connectedHere(change.deviceId)) return
    }
    this.applyRemote(() => {
      if (change.kind === 'presence') this.state.setPresence(change.deviceId, change.online, Date.parse(change.at))
      else {
        const byTs = new Map<number, Array<{ capability: CapabilityName, value: ReadingsChange['readings'][string]['value'] }>>()
        for (const [capability, r] of Object.entries(change.readings)) {
          const ts = Date.parse(r.ts)
          let list = byTs.get(ts)
          if (!list) byTs.set(ts, list = [])
          list.push({ capability: capability as CapabilityName, value: r.value })
        }
        for (const [ts, readings] of byTs) this.state.applyReadings(change.deviceId, readings, ts)
      }
    })
  }

  private applyRemote (apply: () => void): void {
    this.applying = true
    try {
      apply()
    } finally {
      this.applying = false
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.state.off('readings', this.onLocal)
    this.state.off('presence', this.onLocal)
    this.rejoin()
    this.sub.disconnect()
    await endRedis(this.pub)
  }
}
