import { EventEmitter } from 'node:events'
import type { DeliveryHandler, DeviceBus, DevicePacket } from '@trellis/broker'
import { topics, type OutboundChannel } from '@trellis/device-sdk'

/** A command the fake bus was asked to publish. */
export interface PublishedCommand { deviceId: string, payload: Buffer }

/**
 * A device bus in memory, for unit tests: the test plays the devices
 * (`deliver`, `connect`, `subscribe`) and reads what the hub published.
 */
export class FakeBus extends EventEmitter implements DeviceBus {
  readonly published: PublishedCommand[] = []
  backlog = 0
  /** When set, `publishCommand` fails with it. */
  publishError: Error | null = null
  private readonly handlers = new Map<OutboundChannel, DeliveryHandler>()
  private readonly ready = new Set<string>()
  private readonly here = new Set<string>()

  onDelivery (channel: OutboundChannel, handler: DeliveryHandler | null): void {
    if (handler) this.handlers.set(channel, handler)
    else this.handlers.delete(channel)
  }

  publishCommand (deviceId: string, payload: Buffer, done: (err?: Error) => void): void {
    if (this.publishError) return done(this.publishError)
    this.published.push({ deviceId, payload })
    done()
  }

  canReceiveCommands (deviceId: string): boolean {
    return this.ready.has(deviceId)
  }

  /** True between `connect` and `disconnect`, as a broker's connection would be. */
  isConnectedHere (deviceId: string): boolean {
    return this.here.has(deviceId)
  }

  devicesHere (): string[] {
    return [...this.here]
  }

  /** True while a handler is set for `channel`. */
  handles (channel: OutboundChannel): boolean {
    return this.handlers.has(channel)
  }

  /**
   * Hands a device's message to the hub, as a broker would; `done` is what the
   * broker would be told (the PUBACK released, or withheld with an error).
   */
  deliver (deviceId: string, channel: OutboundChannel, payload: string | Buffer, qos: 0 | 1 = 1, done: (err?: Error | null) => void = () => {}): void {
    const handler = this.handlers.get(channel)
    if (!handler) return done()
    const packet: DevicePacket = { topic: topics[channel](deviceId), payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos }
    handler(deviceId, packet, done)
  }

  /** Like `deliver`, resolving with the error the handler completed with (undefined when none). */
  deliverAndWait (deviceId: string, channel: OutboundChannel, payload: string | Buffer, qos: 0 | 1 = 1): Promise<Error | undefined> {
    return new Promise((resolve) => this.deliver(deviceId, channel, payload, qos, (err) => resolve(err ?? undefined)))
  }

  /** The device connects; with `subscribed`, its persistent session already holds its command subscription. */
  connect (deviceId: string, subscribed = false): void {
    this.here.add(deviceId)
    this.emit('connect', deviceId)
    if (subscribed) this.subscribe(deviceId)
  }

  /** The device subscribes to its commands. */
  subscribe (deviceId: string): void {
    this.ready.add(deviceId)
    this.emit('commands-ready', deviceId)
  }

  disconnect (deviceId: string): void {
    this.here.delete(deviceId)
    this.ready.delete(deviceId)
    this.emit('disconnect', deviceId)
  }
}
