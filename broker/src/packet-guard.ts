import type { Client } from 'aedes'
import type { KeyedBuckets } from './limits.js'
import { deviceOf, remoteAddress, type BrokerParts } from './clients.js'

/** The parts of mqtt-packet's parser that the packet guard hooks; checked at each connection. */
interface PacketParser {
  packet: { length: number }
  _parseLength (): boolean
  _emitError (err: Error): void
  listeners (event: 'packet'): Array<(packet: unknown) => void>
  removeListener (event: 'packet', fn: (packet: unknown) => void): unknown
  on (event: 'packet', fn: (packet: unknown) => void): unknown
}

export interface PacketLimits {
  /** See `BrokerOptions.maxPacketBytes`. */
  maxPacketBytes: number
  /** Publishes per device (`BrokerOptions.publishRate`). */
  publishBudget: KeyedBuckets
  /** Dropped publishes per device before it is disconnected (`BrokerOptions.publishAbuse`). */
  abuseBudget: KeyedBuckets
}

/**
 * Hooks the connection's packet parser, before any byte is read: a declared
 * length over the limit cuts the connection before the body is buffered
 * (aedes has no limit and would buffer it whole), and a device's publishes
 * pass its rate limit before aedes sees them.
 */
export function guardPackets (client: Client, limits: PacketLimits, parts: BrokerParts): void {
  const { maxPacketBytes, publishBudget, abuseBudget } = limits
  const { log, stats, report } = parts
  const parser = (client as unknown as { _parser: PacketParser })._parser
  const listeners = parser.listeners('packet')
  if (typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function' || listeners.length !== 1) {
    throw new Error('the aedes/mqtt-packet parser is not the one the packet guard was written for; check maxPacketBytes before upgrading')
  }
  const parseLength = parser._parseLength
  parser._parseLength = function (this: PacketParser) {
    if (!parseLength.call(this)) return false
    if (this.packet.length <= maxPacketBytes) return true
    stats.oversizedPackets++
    const detail = `packet declaring ${this.packet.length} bytes cut off; the limit is ${maxPacketBytes}`
    log.warn({ clientId: client.id, declared: this.packet.length }, 'oversized packet; disconnecting')
    report({ type: 'packet-too-large', deviceId: deviceOf(client), address: remoteAddress(client), detail })
    this._emitError(new Error(detail))
    return false
  }
  const enqueue = listeners[0]
  parser.removeListener('packet', enqueue)
  parser.on('packet', function (this: unknown, packet) {
    const deviceId = deviceOf(client)
    const publish = packet as { cmd: string, qos?: number, messageId?: number }
    if (deviceId !== null && publish.cmd === 'publish' && !publishBudget.take(deviceId)) {
      stats.publishDropped++
      // Acknowledged and discarded: MQTT 3.1.1 has no "too fast" reason code, and an unacknowledged
      // QoS 1 publish would leave a well-behaved client waiting for a PUBACK until it reconnects.
      if (publish.qos && publish.messageId !== undefined && !client.closed) {
        client.conn.write(Buffer.from([publish.qos === 1 ? 0x40 : 0x50, 0x02, publish.messageId >> 8, publish.messageId & 0xff]))
      }
      if (!abuseBudget.take(deviceId) && !client.closed) {
        stats.rateLimitDisconnects++
        log.warn({ deviceId }, 'sustained publishing over the rate limit; disconnecting')
        report({ type: 'rate-limited', deviceId, address: remoteAddress(client), detail: 'sustained publishing over the rate limit; disconnected' })
        client.close()
      }
      return
    }
    enqueue.call(this, packet)
  })
}
