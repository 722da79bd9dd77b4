import net from 'node:net'
import tls from 'node:tls'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { EventEmitter } from 'node:events'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import { pino } from 'pino'
import { canReceive, publishDenial, subscribeDenial } from './policy.js'
import { KeyedBuckets } from './limits.js'
import type { Broker, BrokerOptions, BrokerStats, SecurityEvent } from './options.js'
import { AuthFailureBudgets, authenticator } from './auth.js'
import { packetGuard } from './packet-guard.js'
import { ReadSlices } from './read-slices.js'
import { boundOutgoingQueues } from './queues.js'
import { SubscribeRefusals } from './refusals.js'
import { deviceOf, printable, remoteAddress, type BrokerParts } from './clients.js'
import { sharedBackends } from './shared.js'
import { warnEveryMinute } from './redis.js'
import { hasChannel, outboundChannels, parseAllDevicesFilter, type Channel } from '@trellis/device-sdk/topics'

export * from './options.js'
export type { AuthFailureLimit } from './auth.js'

/**
 * Builds the MQTT broker: aedes with device authentication (`auth.ts`), the
 * per-device topic policy of `policy.ts`, the packet guard
 * (`packet-guard.ts`), bounded outgoing queues (`queues.ts`) and rate-bounded
 * reports of refused subscriptions (`refusals.ts`). It does not listen until
 * `listen()`.
 */
export async function createBroker (opts: BrokerOptions): Promise<Broker> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'broker' })
  const stats: BrokerStats = {
    connections: 0, authFailures: 0, authThrottled: 0, publishDenied: 0, publishHeld: 0, subscribeDenied: 0,
    publishDropped: 0, rateLimitDisconnects: 0, oversizedPackets: 0, queueDropped: 0, readsDeferred: 0, readBacklog: 0, answersAwaited: 0,
  }
  const report = (event: SecurityEvent) => {
    try {
      opts.onSecurityEvent?.(event)
    } catch (err) {
      log.error({ err }, 'security event sink failed')
    }
  }
  const parts: BrokerParts = { log, stats, report }
  const serviceClientIds = new Set<string>()
  const authFailures = new AuthFailureBudgets(opts)
  const maxConnections = opts.maxConnections ?? 50_000
  const maxKeepalive = opts.maxKeepaliveSeconds ?? 600
  const guardPackets = packetGuard({
    maxPacketBytes: opts.maxPacketBytes ?? 64 * 1024,
    publishBudget: new KeyedBuckets(opts.publishRate ?? { perSecond: 1000, burst: 5000 }),
    abuseBudget: new KeyedBuckets(opts.publishAbuse ?? { perSecond: 200, burst: 2000 }),
  }, parts)
  const refusals = new SubscribeRefusals(opts.subscribeRefusals ?? {}, parts)
  const readSlices = new ReadSlices(opts.readSliceMs ?? 2, stats)

  const shared = opts.redisUrl ? sharedBackends(opts.redisUrl, log) : null
  const aedesOpts: AedesOptions = {
    ...(shared && { mq: shared.mq, persistence: shared.persistence }),
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
      client.requestedClientId = packet.clientId ?? ''
      // MQTT 3.1.1 lets only the client choose its keepalive; granting it as asked would let a silent socket live forever.
      if (!packet.keepalive || packet.keepalive > maxKeepalive) packet.keepalive = maxKeepalive
      done(null, true)
    },
    authenticate: authenticator(opts, parts, serviceClientIds, authFailures),
    authorizePublish: (client, packet, done) => {
      // A publish from the broker itself (a will) has a client; one from the hub in-process does not.
      if (!client) return done(null)
      const principal = client.principal
      const denial = principal ? publishDenial(principal, packet.topic, packet.retain, opts.ownTopics) : 'not-own-topic'
      if (denial) {
        stats.publishDenied++
        const topic = printable(packet.topic)
        log.warn({ clientId: client.id, topic, denial }, 'publish denied; disconnecting')
        report({ type: 'acl-violation', deviceId: deviceOf(client), address: remoteAddress(client), detail: `publish to ${topic} denied (${denial}); disconnected` })
        return done(new Error(`publish to ${topic} denied: ${denial}`))
      }
      if (principal?.kind === 'device') {
        if (broker.beforeAck) return broker.beforeAck(principal.deviceId, packet, done)
        if (opts.service && packet.qos > 0 && !hubListens(packet.topic)) {
          stats.publishHeld++
          heldWarning(new Error(`no session of the service principal subscribes to ${printable(packet.topic)}`))
          return done(new Error('the hub has not subscribed yet: publish again once reconnected'))
        }
      }
      done(null)
    },
    authorizeSubscribe: (client, sub, done) => {
      const principal = client.principal
      const denial = principal ? subscribeDenial(principal, sub.topic, opts.ownTopics) : 'not-own-topic'
      if (denial) {
        refusals.refused(client, sub.topic, denial)
        // A null subscription answers SUBACK 0x80 for this filter and keeps the connection.
        return done(null, null)
      }
      done(null, sub)
    },
    authorizeForward: (client, packet) => {
      const principal = client.principal
      return principal && canReceive(principal, packet.topic, opts.ownTopics) ? packet : undefined
    },
  }
  /**
   * A broker apart from its hub (`service` set, no ingest here): a device's
   * QoS 1 message is acknowledged here and then queued for the hub's
   * persistent session. After a restart this broker holds no sessions, and
   * until the hub subscribes again such a message would be acknowledged and
   * delivered to nobody. Until then it is refused unacknowledged: the device
   * is disconnected, and its SDK sends it again once back. The channels the
   * service's sessions subscribed to over every device, kept for the life of
   * this broker. Checked per message without allocating (`hasChannel`).
   */
  const serviceChannels = new Set<Channel>()
  const hubListens = (topic: string): boolean => {
    for (const channel of outboundChannels) if (hasChannel(topic, channel)) return serviceChannels.has(channel)
    // Not a canonical topic: no session of the hub's could receive it anyway.
    return true
  }
  const heldWarning = warnEveryMinute(log, 'device messages refused unacknowledged: the hub\'s session has not subscribed to them (yet)')
  const aedes = await Aedes.createBroker(aedesOpts)
  aedes.on('subscribe', (subscriptions: Array<{ topic: string }>, client: Client) => {
    if (!client || !serviceClientIds.has(client.id)) return
    for (const sub of subscriptions) {
      const channel = parseAllDevicesFilter(sub.topic)
      if (channel) serviceChannels.add(channel)
    }
  })
  aedes.on('unsubscribe', (unsubscriptions: string[], client: Client) => {
    if (!client || !serviceClientIds.has(client.id)) return
    for (const filter of unsubscriptions) {
      const channel = parseAllDevicesFilter(filter)
      if (channel) serviceChannels.delete(channel)
    }
  })
  const maxQueued = opts.maxQueuedPerClient ?? 1000
  const maxQueuedForService = opts.maxQueuedForService ?? 100_000
  boundOutgoingQueues(aedes, (clientId) => serviceClientIds.has(clientId) ? maxQueuedForService : maxQueued, stats)
  aedes.on('client', () => { stats.connections++ })
  aedes.on('clientDisconnect', (client: Client) => {
    stats.connections--
    refusals.forget(client)
  })
  // aedes emits `error` of its own, when its periodic sweep of dead brokers' wills fails (Redis
  // away, in a cluster) among others: unheard, it would end the process.
  ;(aedes as unknown as EventEmitter).on('error', warnEveryMinute(log, 'aedes reported an error (its sweep of dead brokers\' wills, say)'))
  aedes.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client?.id, err: err.message }, 'client error'))
  aedes.on('connectionError', (client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))

  const handle = (stream: Duplex, req?: IncomingMessage) => {
    const client = (aedes.handle as unknown as (s: Duplex, r?: IncomingMessage) => Client)(stream, req)
    try {
      guardPackets(client)
      readSlices.watch(client)
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
    awaitAnswer: () => readSlices.awaitAnswer(),
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
    applyAuthFailureSpent (limit, key) {
      authFailures.applySpent(limit, key)
    },
    disconnect (deviceId) {
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[deviceId]
      if (client) client.close()
    },
    async close () {
      refusals.close()
      for (const server of servers) server.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await shared?.close()
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        if (!s.listening) return resolve()
        s.close(() => resolve())
      })))
    },
  }
  return broker
}
