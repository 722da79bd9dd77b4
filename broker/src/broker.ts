import net from 'node:net'
import { createHash, timingSafeEqual } from 'node:crypto'
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes'
import { pino, type Logger } from 'pino'
import { isDeviceId } from '@trellis/device-sdk'
import { canReceive, publishDenial, subscribeDenial, type Principal } from './policy.js'

export interface BrokerOptions {
  /** Checks a device's secret; resolves true when it is the device's current secret. */
  authenticateDevice: (deviceId: string, secret: string) => Promise<boolean> | boolean
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
  publishDenied: number
  subscribeDenied: number
}

export interface Broker {
  readonly aedes: Aedes
  readonly stats: BrokerStats
  /** Set by the hub's ingest; default none: publishes are acknowledged on receipt. */
  beforeAck: BeforeAck | null
  /** Listens for MQTT over TCP; resolves with the bound port. Port 0 picks a free one. */
  listen (opts: { port: number, host?: string }): Promise<{ port: number, host: string }>
  /** Closes every connection of a device (after a secret rotation, say). */
  disconnect (deviceId: string): void
  close (): Promise<void>
}

declare module 'aedes' {
  interface Client {
    principal?: Principal
  }
}

/**
 * Builds the MQTT broker: aedes with device authentication and the per-device
 * topic policy of `policy.ts`. It does not listen until `listen()`.
 */
export async function createBroker (opts: BrokerOptions): Promise<Broker> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'broker' })
  const stats: BrokerStats = { connections: 0, authFailures: 0, publishDenied: 0, subscribeDenied: 0 }
  const serviceHash = opts.service && sha256(opts.service.secret)
  const maxConnections = opts.maxConnections ?? 50_000

  const aedesOpts: AedesOptions = {
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    drainTimeout: opts.drainTimeoutMs ?? 15_000,
    maxClientsIdLength: 64,
    concurrency: opts.deliveryConcurrency ?? 0,
    preConnect: (client, packet, done) => {
      if (stats.connections >= maxConnections) {
        log.warn({ connections: stats.connections }, 'connection refused: broker is at its connection limit')
        return done(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false)
      }
      done(null, true)
    },
    authenticate: (client, username, password, done) => {
      const refuse = (reason: string, returnCode = 4) => {
        stats.authFailures++
        log.debug({ clientId: client.id, reason }, 'connection refused')
        const err = Object.assign(new Error(reason), { returnCode })
        done(err, false)
      }
      const secret = password?.toString('utf8') ?? ''
      if (opts.service && username === opts.service.username) {
        if (!safeEqual(sha256(secret), serviceHash!)) return refuse('bad service credentials')
        client.principal = { kind: 'service', name: username }
        return done(null, true)
      }
      if (!username || client.id !== username) return refuse('client id must equal the username (the device id)', 2)
      if (!isDeviceId(username)) return refuse('not a device id', 2)
      Promise.resolve(opts.authenticateDevice(username, secret)).then((ok) => {
        if (!ok) return refuse('bad device id or secret')
        client.principal = { kind: 'device', deviceId: username }
        done(null, true)
      }, (err: Error) => {
        log.error({ err, clientId: client.id }, 'device authentication failed')
        done(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false)
      })
    },
    authorizePublish: (client, packet, done) => {
      // A publish from the broker itself (a will) has a client; one from the hub in-process does not.
      if (!client) return done(null)
      const principal = client.principal
      const denial = principal ? publishDenial(principal, packet.topic, packet.retain) : 'not-own-topic'
      if (denial) {
        stats.publishDenied++
        log.warn({ clientId: client.id, topic: packet.topic.slice(0, 256), denial }, 'publish denied; disconnecting')
        return done(new Error(`publish to ${packet.topic.slice(0, 256)} denied: ${denial}`))
      }
      if (principal?.kind === 'device' && broker.beforeAck) return broker.beforeAck(principal.deviceId, packet, done)
      done(null)
    },
    authorizeSubscribe: (client, sub, done) => {
      const principal = client.principal
      const denial = principal ? subscribeDenial(principal, sub.topic) : 'not-own-topic'
      if (denial) {
        stats.subscribeDenied++
        log.warn({ clientId: client.id, topic: sub.topic.slice(0, 256), denial }, 'subscription denied')
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
  aedes.on('client', () => { stats.connections++ })
  aedes.on('clientDisconnect', () => { stats.connections-- })
  aedes.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client?.id, err: err.message }, 'client error'))
  aedes.on('connectionError', (client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))

  const servers: net.Server[] = []
  const broker: Broker = {
    aedes,
    stats,
    beforeAck: null,
    async listen ({ port, host = '127.0.0.1' }) {
      // Commands and acks are small packets answered by small packets: without
      // noDelay, Nagle and delayed ACKs add about 40 ms to each leg.
      const server = net.createServer({ noDelay: true }, aedes.handle as (socket: net.Socket) => void)
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => { server.off('error', reject); resolve() })
      })
      const address = server.address() as net.AddressInfo
      log.info({ host, port: address.port }, 'MQTT listening')
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

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
