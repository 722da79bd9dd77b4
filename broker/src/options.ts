import type { OwnTopicsOf } from './policy.js'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import type { Principal } from './policy.js'
import type { Rate } from './limits.js'
import type { AuthFailureLimit } from './auth.js'
import type { SubscribeRefusalOptions } from './refusals.js'

/* The broker's options, its statistics and its face (`Broker`): what `createBroker` takes and gives. */

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
  /**
   * A Redis (`redis://host:port`) shared with the other brokers of a cluster:
   * deliveries go through it (mqemitter-redis), and sessions, subscriptions,
   * retained messages and QoS 1 messages in flight live in it
   * (aedes-persistence-redis), so a device may reconnect to any node. Default
   * none: all of it in this process's memory.
   */
  redisUrl?: string
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
   * The device's own topic tree, when its model's mapping declares one: the
   * ACL then lets the device publish on its telemetry topics and receive its
   * command topics, each holding its id. Asked only for topics outside
   * `devices/…`. Default none: the canonical tree only.
   */
  ownTopics?: OwnTopicsOf
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
   * Told of each failure counted against `authFailuresPerClientId` or
   * `authFailuresPerAddress`, so a cluster can count it on the other nodes
   * too (`Broker.applyAuthFailureSpent`). Default: none.
   */
  onAuthFailureSpent?: (limit: AuthFailureLimit, key: string) => void | Promise<void>
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
  /**
   * While an answer is awaited on the event loop (`Broker.awaitAnswer`, an API
   * request in the hub), the longest stretch of one loop turn spent reading
   * MQTT connections, in ms; connections readable after it wait, in order, for
   * the next slice (`read-slices.ts`), so the answer is not held up behind
   * every device's telemetry. 0 reads every readable connection at once.
   * Default 2.
   */
  readSliceMs?: number
  /** How refused subscriptions are audited and when a client sending them is cut off; defaults in SubscribeRefusalOptions. */
  subscribeRefusals?: SubscribeRefusalOptions
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
  /** A broker apart only: device QoS 1 messages refused unacknowledged because no session of the hub's subscribed to them yet (after a restart). */
  publishHeld: number
  subscribeDenied: number
  /** Publishes dropped by the rate limit. */
  publishDropped: number
  /** Devices disconnected for sustained publishing beyond the rate limit. */
  rateLimitDisconnects: number
  /** Connections cut for declaring a packet over `maxPacketBytes`. */
  oversizedPackets: number
  /** Messages not queued for a client because its queue was full. */
  queueDropped: number
  /** Reads of device connections put off to a later slice of the event loop (`readSliceMs`). */
  readsDeferred: number
  /** Device connections waiting for their slice now. */
  readBacklog: number
  /** Answers awaited on the broker's event loop now (`awaitAnswer`): while any is, connections are read in slices. */
  answersAwaited: number
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
  /**
   * Says an answer is awaited on this event loop (the hub: an API request)
   * until the returned function is called: meanwhile connections are read in
   * slices of `readSliceMs`.
   */
  awaitAnswer (): () => void
  /** Serves one connection from any duplex stream (a WebSocket, say), with the same auth and limits. */
  handle (stream: Duplex, req?: IncomingMessage): void
  /** Closes every connection of a device (after a secret rotation, say). */
  disconnect (deviceId: string): void
  /** Counts an authentication failure another node of the cluster saw (see `onAuthFailureSpent`). */
  applyAuthFailureSpent (limit: AuthFailureLimit, key: string): void
  close (): Promise<void>
}

declare module 'aedes' {
  interface Client {
    principal?: Principal
    /** The client id as the CONNECT sent it (aedes replaces an empty id); the CONNECT's own string, so it costs no copy. */
    requestedClientId?: string
  }
}
