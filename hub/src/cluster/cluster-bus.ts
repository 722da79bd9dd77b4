import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { clusterRedis, endRedis, rejoinAfterOutage, warnEveryMinute, type DeliveryHandler, type DeviceBus, type DeviceBusEvent, type InProcessBus } from '@trellis/broker'
import type { OutboundChannel } from '@trellis/device-sdk/topics'

/** The Redis channel a node tells the others on that a device of its can now take commands, or is gone. */
export const BUS_CHANNEL = 'trellis:bus'

type BusMessage = { node: string, event: 'commands-ready' | 'gone', deviceId: string } | { node: string, event: 'resync' }

/**
 * The device bus of a cluster node: this node's broker (its `InProcessBus`,
 * whose emitter and sessions are on Redis), plus what the other nodes say of
 * their devices. A device that can take commands on another node can take
 * them from here too (a command published here reaches it through the
 * shared emitter), so a command queued on this node goes out when the device
 * comes back on any node.
 */
export class ClusterBus extends EventEmitter implements DeviceBus {
  /** Devices ready for commands on another node, with that node. */
  private readonly readyElsewhere = new Map<string, string>()
  private readonly pub: Redis
  private readonly sub: Redis
  private closed = false
  /** Fails for every device that comes or goes while Redis is away: warned of once a minute. */
  private readonly readinessNotShared: (err: Error) => void

  private constructor (private readonly local: InProcessBus, redisUrl: string, private readonly node: string, log: Logger) {
    super()
    this.pub = clusterRedis(redisUrl, log, 'device readiness, publishing')
    this.sub = clusterRedis(redisUrl, log, 'device readiness, subscribed')
    this.readinessNotShared = warnEveryMinute(log, 'device readiness not shared with the other nodes')
    this.rejoin = rejoinAfterOutage(this.sub, [BUS_CHANNEL], log, 'device readiness', async () => {
      this.reannounce()
      await this.pub.publish(BUS_CHANNEL, JSON.stringify({ node: this.node, event: 'resync' } satisfies BusMessage))
    })
  }

  /** Forgets the outage handler at close. */
  private readonly rejoin: () => void

  /** Says again which of this node's devices take commands: the others may have forgotten them while Redis was away. */
  private reannounce (): void {
    for (const deviceId of this.local.devicesHere()) if (this.local.canReceiveCommands(deviceId)) this.announce('commands-ready', deviceId)
  }

  static async start (local: InProcessBus, redisUrl: string, node: string, log: Logger): Promise<ClusterBus> {
    const bus = new ClusterBus(local, redisUrl, node, log)
    bus.sub.on('message', bus.onMessage)
    await bus.sub.subscribe(BUS_CHANNEL)
    local.on('connect', bus.onConnect)
    local.on('disconnect', bus.onDisconnect)
    local.on('commands-ready', bus.onReady)
    return bus
  }

  onDelivery (channel: OutboundChannel, handler: DeliveryHandler | null): void {
    this.local.onDelivery(channel, handler)
  }

  publishCommand (deviceId: string, payload: Buffer, done: (err?: Error) => void): void {
    this.local.publishCommand(deviceId, payload, done)
  }

  canReceiveCommands (deviceId: string): boolean {
    return this.local.canReceiveCommands(deviceId) || this.readyElsewhere.has(deviceId)
  }

  get backlog (): number {
    return this.local.backlog
  }

  /** True when the device has a connection to this node's broker. */
  isConnectedHere (deviceId: string): boolean {
    return this.local.isConnectedHere(deviceId)
  }

  override on (event: DeviceBusEvent, listener: (deviceId: string) => void): this {
    return super.on(event, listener)
  }

  override off (event: DeviceBusEvent, listener: (deviceId: string) => void): this {
    return super.off(event, listener)
  }

  /** A node died: the devices it had ready take commands from here no more. */
  forgetNode (node: string): void {
    for (const [deviceId, holder] of [...this.readyElsewhere]) if (holder === node) this.readyElsewhere.delete(deviceId)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.local.off('connect', this.onConnect)
    this.local.off('disconnect', this.onDisconnect)
    this.local.off('commands-ready', this.onReady)
    this.rejoin()
    this.sub.disconnect()
    await endRedis(this.pub)
  }

  private announce (event: 'commands-ready' | 'gone', deviceId: string): void {
    if (this.closed) return
    this.pub.publish(BUS_CHANNEL, JSON.stringify({ node: this.node, event, deviceId } satisfies BusMessage)).catch(this.readinessNotShared)
  }

  private readonly onConnect = (deviceId: string) => { this.emit('connect', deviceId) }

  private readonly onDisconnect = (deviceId: string) => {
    this.emit('disconnect', deviceId)
    this.announce('gone', deviceId)
  }

  private readonly onReady = (deviceId: string) => {
    this.readyElsewhere.delete(deviceId)
    this.emit('commands-ready', deviceId)
    this.announce('commands-ready', deviceId)
  }

  private readonly onMessage = (_channel: string, raw: string) => {
    let message: BusMessage
    try {
      message = JSON.parse(raw) as BusMessage
    } catch {
      return
    }
    if (message.node === this.node) return
    // Another node is back from a Redis outage: it may have forgotten what this node holds.
    if (message.event === 'resync') return this.reannounce()
    if (typeof message.deviceId !== 'string') return
    if (message.event === 'commands-ready') {
      this.readyElsewhere.set(message.deviceId, message.node)
      this.emit('commands-ready', message.deviceId)
    } else if (this.readyElsewhere.get(message.deviceId) === message.node) {
      // Only the node that last had it: a device that moved on is still ready on its new node.
      this.readyElsewhere.delete(message.deviceId)
    }
  }
}
