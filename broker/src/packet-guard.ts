import type { Client } from 'aedes'
import type { KeyedBuckets } from './limits.js'
import { deviceOf, remoteAddress, type BrokerParts } from './clients.js'

type PacketListener = (this: PacketParser, packet: unknown) => void

/** The parts of mqtt-packet's parser that the packet guard hooks; checked at each connection. */
interface PacketParser {
  /** Set by aedes on its client's parser. */
  client: Client
  packet: { length: number }
  _parseLength (): boolean
  _emitError (err: Error): void
  listeners (event: 'packet'): PacketListener[]
  removeListener (event: 'packet', fn: PacketListener): unknown
  on (event: 'packet', fn: PacketListener): unknown
}

export interface PacketLimits {
  /** See `BrokerOptions.maxPacketBytes`. */
  maxPacketBytes: number
  /** Publishes per device (`BrokerOptions.publishRate`). */
  publishBudget: KeyedBuckets
  /** Dropped publishes per device before it is disconnected (`BrokerOptions.publishAbuse`). */
  abuseBudget: KeyedBuckets
}

/** Hooks one connection's packet parser; throws when the parser is not the one it was written for. */
export type PacketGuard = (client: Client) => void

const unexpectedParser = 'the aedes/mqtt-packet parser is not the one the packet guard was written for; check maxPacketBytes before upgrading'

/**
 * Hooks each connection's packet parser, before any byte is read: a declared
 * length over the limit cuts the connection before the body is buffered
 * (aedes has no limit and would buffer it whole), and a device's publishes
 * pass its rate limit before aedes sees them.
 *
 * The two hooks are made once per broker and shared by every connection
 * (they find the client through the parser's `client`, which aedes sets):
 * two closures and their context per connection cost some 230 bytes each of
 * 20,000 idle devices (heap snapshot).
 */
export function packetGuard (limits: PacketLimits, parts: BrokerParts): PacketGuard {
  const { maxPacketBytes, publishBudget, abuseBudget } = limits
  const { log, stats, report } = parts
  // aedes' and mqtt-packet's own functions, the same for every connection: learnt from the first.
  let parseLength: PacketParser['_parseLength'] | null = null
  let enqueue: PacketListener | null = null

  function guardedParseLength (this: PacketParser): boolean {
    if (!parseLength!.call(this)) return false
    if (this.packet.length <= maxPacketBytes) return true
    const client = this.client
    stats.oversizedPackets++
    const detail = `packet declaring ${this.packet.length} bytes cut off; the limit is ${maxPacketBytes}`
    log.warn({ clientId: client.id, declared: this.packet.length }, 'oversized packet; disconnecting')
    report({ type: 'packet-too-large', deviceId: deviceOf(client), address: remoteAddress(client), detail })
    this._emitError(new Error(detail))
    return false
  }

  function guardedEnqueue (this: PacketParser, packet: unknown): void {
    const client = this.client
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
    enqueue!.call(this, packet)
  }

  return (client) => {
    const parser = (client as unknown as { _parser: PacketParser })._parser
    const listeners = parser.listeners('packet')
    if (typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function' || listeners.length !== 1 || parser.client !== client) {
      throw new Error(unexpectedParser)
    }
    parseLength ??= parser._parseLength
    enqueue ??= listeners[0]
    // A parser or an aedes that made its functions per connection would be hooked with another connection's.
    if (parser._parseLength !== parseLength || listeners[0] !== enqueue) throw new Error(unexpectedParser)
    parser._parseLength = guardedParseLength
    parser.removeListener('packet', enqueue)
    parser.on('packet', guardedEnqueue)
  }
}
