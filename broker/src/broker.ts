import net from 'node:net'
import tls from 'node:tls'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createHash, timingSafeEqual } from 'node:crypto'
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes'
import { pino, type Logger } from 'pino'
import { isDeviceId } from '@trellis/device-sdk/topics'
import { canReceive, publishDenial, subscribeDenial, type Principal } from './policy.js'
import { KeyedBuckets, type Rate } from './limits.js'

/** Something a device or a would-be device did that the audit log should know of. */
export interface SecurityEvent {
  type: 'auth-failed' | 'acl-violation' | 'rate-limited' | 'packet-too-large'
  /** The device id it claimed or was authenticated as; null when it gave none. */
  deviceId: string | null
  /** Remote address of the connection. */
  address: string | null
  detail: string
}

export interface BrokerOptions {
  /** Checks a device's secret; resolves true when it is the device's current secret. */
  authenticateDevice: (deviceId: string, secret: string) => Promise<boolean> | boolean
  /**
   * The same check from memory only: undefined when the device is not at hand
   * (a lookup would be needed). Used for a client id over its failure limit,
   * so that a flood aimed at an id costs no lookup: a device at hand is
   * checked (its right secret gets in), any other id is refused unchecked.
   * Default none: such ids are checked with `authenticateDevice`.
   */
  authenticateDeviceFromMemory?: (deviceId: string, secret: string) => boolean | undefined
  /**
   * Credentials of the hub's own connection when it runs apart from the broker.
   * Default: none, so no service connection is possible.
   */
  service?: { username: string, secret: string }
  /** Drop clients that have not sent CONNECT within this many ms. Default 5000 (aedes: 30000). */
  connectTimeoutMs?: number
  /** Disconnect a subscriber whose socket stays unwritable this long. Default 15000 (aedes: 60000). */
  drainTimeoutMs?: number
  /** Refuse connections beyond this many. Default 50000. */
  maxConnections?: number
  /**
   * Messages being delivered at once, across all clients (aedes `concurrency`);
   * 0 for no limit. In-process ingest completes a delivery only once its points
   * are durable, so a limit caps the messages one InfluxDB write can carry and
   * queues the rest in mqemitter, whose queue costs O(length) per message (the
   * overload bench saw the hub spend its whole CPU there). Each client has at
   * most one read of its socket in delivery, which bounds memory without it.
   * Default 0 (aedes: 100).
   */
  deliveryConcurrency?: number
  /**
   * Largest MQTT packet accepted, in bytes, judged by the length its fixed
   * header declares, before the body is read. Default 65536.
   */
  maxPacketBytes?: number
  /**
   * Publishes a device may make: beyond this they are acknowledged, dropped and counted.
   * An appliance reports well under once a second; the default leaves room for
   * backfills and benches while keeping one runaway device from owning ingest.
   * Default 1000/s, burst 5000.
   */
  publishRate?: Rate
  /**
   * Dropped publishes a device may accumulate before it is disconnected: a
   * device dropping faster than `perSecond` for `burst / perSecond` seconds is
   * abusive, not bursty. Default 200/s, burst 2000.
   */
  publishAbuse?: Rate
  /**
   * Keepalive granted, in seconds: a CONNECT asking for none (0) or for more
   * gets this, so a dead connection is noticed within 1.5 times it. Default 600.
   */
  maxKeepaliveSeconds?: number
  /**
   * Failed authentications per client id beyond which further failures for it
   * are refused quietly: no audit row and no log line each, so a flood aimed
   * at one device costs a cache lookup and a hash per attempt. The right
   * secret still gets in: a device secret (192 random bits) cannot be guessed
   * online, and locking the id would let anyone who knows a device's id keep
   * it offline. Default 0.2/s, burst 10.
   */
  authFailuresPerClientId?: Rate
  /** Failed authentications allowed per remote address before it is refused unchecked. Default 5/s, burst 100. */
  authFailuresPerAddress?: Rate
  /**
   * QoS 1/2 messages queued for one client (offline with a persistent session,
   * or online and not acknowledging); beyond this, new ones are dropped and
   * counted. Default 1000 (aedes: unbounded).
   */
  maxQueuedPerClient?: number
  /**
   * The same bound for a session of the hub's service principal, which queues
   * every device's readings while a hub running apart is away: size it for
   * the readings of the longest hub outage to bridge. Default 100000.
   */
  maxQueuedForService?: number
  /** QoS 2 publishes a client may hold awaiting PUBREL before it is cut off. Default 16 (aedes: 1000). */
  maxInflightInbound?: number
  /** Told of each security event (the hub records them in its audit log). Default: none. */
  onSecurityEvent?: (event: SecurityEvent) => void
  logger?: Logger
}

/**
 * Makes a device's publish durable before the broker acknowledges it. aedes 1.x
 * writes a QoS 1 PUBACK before delivering the message to subscribers, so the
 * only place to hold the PUBACK is this step, which runs before it. An error
 * closes the connection without PUBACK: the device keeps the message and
 * re-sends it after reconnecting.
 */
export type BeforeAck = (deviceId: string, packet: PublishPacket, done: (err?: Error | null) => void) => void

export interface BrokerStats {
  connections: number
  authFailures: number
  /**
   * Connection attempts refused because of too many recent failures: unchecked
   * when from an address over its limit, quietly (no audit row) when for a
   * client id over its limit.
   */
  authThrottled: number
  publishDenied: number
  subscribeDenied: number
  /** Publishes dropped by the rate limit. */
  publishDropped: number
  /** Devices disconnected for sustained publishing beyond the rate limit. */
  rateLimitDisconnects: number
  /** Connections cut for declaring a packet over `maxPacketBytes`. */
  oversizedPackets: number
  /** Messages not queued for a client because its queue was full. */
  queueDropped: number
}

export interface ListenOptions {
  port: number
  /** Default 127.0.0.1. */
  host?: string
  /** PEM certificate and key: listens for MQTT over TLS instead of plain TCP. Default: plain TCP. */
  tls?: { cert: string | Buffer, key: string | Buffer }
}

export interface Broker {
  readonly aedes: Aedes
  readonly stats: BrokerStats
  /** Set by the hub's ingest; default none: publishes are acknowledged on receipt. */
  beforeAck: BeforeAck | null
  /** Listens for MQTT over TCP (or TLS); resolves with the bound port. Port 0 picks a free one. */
  listen (opts: ListenOptions): Promise<{ port: number, host: string }>
  /** Serves one connection from any duplex stream (a WebSocket, say), with the same auth and limits. */
  handle (stream: Duplex, req?: IncomingMessage): void
  /** Closes every connection of a device (after a secret rotation, say). */
  disconnect (deviceId: string): void
  close (): Promise<void>
}

declare module 'aedes' {
  interface Client {
    principal?: Principal
    /** The client id and session flag as the CONNECT sent them (aedes replaces an empty id). */
    requested?: { clientId: string, clean: boolean }
  }
}

/** The parts of mqtt-packet's parser that the packet guard hooks; checked at each connection. */
interface PacketParser {
  packet: { length: number }
  _parseLength (): boolean
  _emitError (err: Error): void
  listeners (event: 'packet'): Array<(packet: unknown) => void>
  removeListener (event: 'packet', fn: (packet: unknown) => void): unknown
  on (event: 'packet', fn: (packet: unknown) => void): unknown
}

/**
 * Builds the MQTT broker: aedes with device authentication, the per-device
 * topic policy of `policy.ts` and the limits above. It does not listen until
 * `listen()`.
 */
export async function createBroker (opts: BrokerOptions): Promise<Broker> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'broker' })
  const stats: BrokerStats = {
    connections: 0, authFailures: 0, authThrottled: 0, publishDenied: 0, subscribeDenied: 0,
    publishDropped: 0, rateLimitDisconnects: 0, oversizedPackets: 0, queueDropped: 0,
  }
  const serviceHash = opts.service && sha256(opts.service.secret)
  const serviceClientIds = new Set<string>()
  const maxConnections = opts.maxConnections ?? 50_000
  const maxPacketBytes = opts.maxPacketBytes ?? 64 * 1024
  const maxKeepalive = opts.maxKeepaliveSeconds ?? 600
  const publishBudget = new KeyedBuckets(opts.publishRate ?? { perSecond: 1000, burst: 5000 })
  const abuseBudget = new KeyedBuckets(opts.publishAbuse ?? { perSecond: 200, burst: 2000 })
  const failuresById = new KeyedBuckets(opts.authFailuresPerClientId ?? { perSecond: 0.2, burst: 10 })
  const failuresByAddress = new KeyedBuckets(opts.authFailuresPerAddress ?? { perSecond: 5, burst: 100 })
  const report = (event: SecurityEvent) => {
    try {
      opts.onSecurityEvent?.(event)
    } catch (err) {
      log.error({ err }, 'security event sink failed')
    }
  }
  const deviceOf = (client: Client | null | undefined): string | null =>
    client?.principal?.kind === 'device' ? client.principal.deviceId : null

  const aedesOpts: AedesOptions = {
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    drainTimeout: opts.drainTimeoutMs ?? 15_000,
    maxClientsIdLength: 64,
    concurrency: opts.deliveryConcurrency ?? 0,
    // aedes' own ceiling (qlobber throws past 100 levels) answers with a disconnect; the policy refuses
    // anything deeper than MAX_TOPIC_LEVELS before that, politely, with SUBACK 0x80.
    maxTopicLevels: 100,
    maxInflightInbound: opts.maxInflightInbound ?? 16,
    preConnect: (client, packet, done) => {
      if (stats.connections >= maxConnections) {
        log.warn({ connections: stats.connections }, 'connection refused: broker is at its connection limit')
        return done(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false)
      }
      client.requested = { clientId: packet.clientId ?? '', clean: packet.clean !== false }
      // MQTT 3.1.1 lets only the client choose its keepalive; granting it as asked would let a silent socket live forever.
      if (!packet.keepalive || packet.keepalive > maxKeepalive) packet.keepalive = maxKeepalive
      done(null, true)
    },
    authenticate: (client, username, password, done) => {
      const address = remoteAddress(client)
      // MQTT 3.1.1 allows 65535-byte client ids; only a device id's 64 characters are ever kept (throttle keys, audit).
      const claimed = (client.requested?.clientId ?? '').slice(0, 65)
      const refuse = (reason: string, returnCode = 4) => {
        log.debug({ clientId: claimed, address, reason }, 'connection refused')
        done(Object.assign(new Error(reason), { returnCode }), false)
      }
      // Over its limit, a client id's failures are refused quietly (see authFailuresPerClientId).
      const idThrottled = !failuresById.has(claimed)
      const fail = (reason: string, returnCode = 4) => {
        if (address) failuresByAddress.take(address)
        if (idThrottled) {
          stats.authThrottled++
          return refuse('too many failed attempts; try again later', 3)
        }
        stats.authFailures++
        failuresById.take(claimed)
        report({ type: 'auth-failed', deviceId: claimed || null, address, detail: reason })
        refuse(reason, returnCode)
      }
      // aedes would invent an id for an empty one and, with clean=false, keep a session under it (MQTT-3.1.3-8).
      if (claimed === '') return fail('a client id (the device id) is required', 2)
      if (/[+#/\u0000]/.test(claimed) || /[+#/\u0000]/.test(username ?? '')) return fail('client id and username may not contain +, #, / or NUL', 2)
      if (claimed.length > 64) return fail('a client id is at most 64 characters (a device id)', 2)
      if (address !== null && !failuresByAddress.has(address)) {
        // Refused unchecked: a flood from one address costs neither a lookup nor a hash, nor an audit row each.
        stats.authThrottled++
        return refuse('too many failed attempts; try again later', 3)
      }
      const secret = password?.toString('utf8') ?? ''
      if (opts.service && username === opts.service.username) {
        if (!safeEqual(sha256(secret), serviceHash!)) return fail('bad service credentials')
        client.principal = { kind: 'service', name: username }
        serviceClientIds.add(claimed)
        return done(null, true)
      }
      if (!username || claimed !== username) return fail('client id must equal the username (the device id)', 2)
      if (!isDeviceId(username)) return fail('not a device id', 2)
      if (idThrottled && opts.authenticateDeviceFromMemory) {
        const ok = opts.authenticateDeviceFromMemory(username, secret)
        if (ok === undefined) {
          stats.authThrottled++
          return refuse('too many failed attempts; try again later', 3)
        }
        if (!ok) return fail('bad device id or secret')
        client.principal = { kind: 'device', deviceId: username }
        return done(null, true)
      }
      Promise.resolve(opts.authenticateDevice(username, secret)).then((ok) => {
        if (!ok) return fail('bad device id or secret')
        client.principal = { kind: 'device', deviceId: username }
        done(null, true)
      }, (err: Error) => {
        log.error({ err, clientId: username }, 'device authentication failed')
        refuse('server unavailable', 3)
      })
    },
    authorizePublish: (client, packet, done) => {
      // A publish from the broker itself (a will) has a client; one from the hub in-process does not.
      if (!client) return done(null)
      const principal = client.principal
      const denial = principal ? publishDenial(principal, packet.topic, packet.retain) : 'not-own-topic'
      if (denial) {
        stats.publishDenied++
        const topic = printable(packet.topic)
        log.warn({ clientId: client.id, topic, denial }, 'publish denied; disconnecting')
        report({ type: 'acl-violation', deviceId: deviceOf(client), address: remoteAddress(client), detail: `publish to ${topic} denied (${denial}); disconnected` })
        return done(new Error(`publish to ${topic} denied: ${denial}`))
      }
      if (principal?.kind === 'device' && broker.beforeAck) return broker.beforeAck(principal.deviceId, packet, done)
      done(null)
    },
    authorizeSubscribe: (client, sub, done) => {
      const principal = client.principal
      const denial = principal ? subscribeDenial(principal, sub.topic) : 'not-own-topic'
      if (denial) {
        stats.subscribeDenied++
        const topic = printable(sub.topic)
        log.warn({ clientId: client.id, topic, denial }, 'subscription denied')
        report({ type: 'acl-violation', deviceId: deviceOf(client), address: remoteAddress(client), detail: `subscription to ${topic} denied (${denial})` })
        // A null subscription answers SUBACK 0x80 for this filter and keeps the connection.
        return done(null, null)
      }
      done(null, sub)
    },
    authorizeForward: (client, packet) => {
      const principal = client.principal
      return principal && canReceive(principal, packet.topic) ? packet : undefined
    },
  }
  const aedes = await Aedes.createBroker(aedesOpts)
  const maxQueued = opts.maxQueuedPerClient ?? 1000
  const maxQueuedForService = opts.maxQueuedForService ?? 100_000
  boundOutgoingQueues(aedes, (clientId) => serviceClientIds.has(clientId) ? maxQueuedForService : maxQueued, stats)
  aedes.on('client', () => { stats.connections++ })
  aedes.on('clientDisconnect', () => { stats.connections-- })
  aedes.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client?.id, err: err.message }, 'client error'))
  aedes.on('connectionError', (client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))

  /**
   * Hooks the connection's packet parser, before any byte is read: a declared
   * length over the limit cuts the connection before the body is buffered
   * (aedes has no limit and would buffer it whole), and a device's publishes
   * pass its rate limit before aedes sees them.
   */
  const guard = (client: Client) => {
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

  const handle = (stream: Duplex, req?: IncomingMessage) => {
    const client = (aedes.handle as unknown as (s: Duplex, r?: IncomingMessage) => Client)(stream, req)
    try {
      guard(client)
    } catch (err) {
      log.error({ err }, 'connection refused: cannot enforce limits')
      stream.destroy()
    }
  }

  const servers: net.Server[] = []
  const broker: Broker = {
    aedes,
    stats,
    handle,
    beforeAck: null,
    async listen ({ port, host = '127.0.0.1', tls: tlsOpts }) {
      // Commands and acks are small packets answered by small packets: without
      // noDelay, Nagle and delayed ACKs add about 40 ms to each leg.
      const server = tlsOpts
        ? tls.createServer({ cert: tlsOpts.cert, key: tlsOpts.key, noDelay: true }, (socket) => handle(socket))
        : net.createServer({ noDelay: true }, (socket) => handle(socket))
      // Refused by the kernel-facing server before aedes allocates anything; sockets awaiting CONNECT count too.
      server.maxConnections = maxConnections
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => { server.off('error', reject); resolve() })
      })
      const address = server.address() as net.AddressInfo
      log.info({ host, port: address.port, tls: Boolean(tlsOpts) }, 'MQTT listening')
      return { port: address.port, host }
    },
    disconnect (deviceId) {
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[deviceId]
      if (client) client.close()
    },
    async close () {
      for (const server of servers) server.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        if (!s.listening) return resolve()
        s.close(() => resolve())
      })))
    },
  }
  return broker
}

interface OutgoingPersistence {
  outgoingEnqueue (sub: { clientId: string }, packet: unknown): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
  outgoingClearMessageId (client: { id: string }, packet: unknown): Promise<unknown>
}

/**
 * aedes' persistence queues QoS 1/2 messages per client without limit. Every
 * message enters through `outgoingEnqueue*` and leaves through
 * `outgoingClearMessageId`, so counting at those two doors bounds the queue.
 */
function boundOutgoingQueues (aedes: Aedes, maxFor: (clientId: string) => number, stats: BrokerStats): void {
  const persistence = (aedes as unknown as { persistence: OutgoingPersistence }).persistence
  const queued = new Map<string, number>()
  const admit = (clientId: string): boolean => {
    const n = queued.get(clientId) ?? 0
    if (n >= maxFor(clientId)) {
      stats.queueDropped++
      return false
    }
    queued.set(clientId, n + 1)
    return true
  }
  const enqueue = persistence.outgoingEnqueue.bind(persistence)
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence)
  const clear = persistence.outgoingClearMessageId.bind(persistence)
  persistence.outgoingEnqueue = async (sub, packet) => {
    if (admit(sub.clientId)) await enqueue(sub, packet)
  }
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = subs.filter((sub) => admit(sub.clientId))
    if (admitted.length > 0) await enqueueCombi(admitted, packet)
  }
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet)
    if (removed) {
      const n = (queued.get(client.id) ?? 1) - 1
      if (n > 0) queued.set(client.id, n)
      else queued.delete(client.id)
    }
    return removed
  }
}

function remoteAddress (client: Client): string | null {
  const conn = (client as unknown as { conn?: { remoteAddress?: string } }).conn
  const req = (client as unknown as { req?: IncomingMessage }).req
  return conn?.remoteAddress ?? req?.socket?.remoteAddress ?? null
}

/** A topic fit for a log line: bounded, control characters escaped. */
function printable (topic: string): string {
  return topic.slice(0, 256).replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
