import path from 'node:path'
import { pino, type Logger } from 'pino'
import { topics } from '@trellis/device-sdk/topics'
import { InProcessBus, attachWebSocketListener, createBroker, type Broker, type BrokerOptions, type DeviceBus } from '@trellis/broker'
import { buildApi, type Api, type ApiOptions } from './api/app.js'
import type { ApiContext } from './api/context.js'
import { attachIngest, type IngestOptions } from './ingest/ingest.js'
import { DeadLetters, type DeadLetterLimits } from './ingest/dead-letters.js'
import type { MakerQuotas } from './registry/quotas.js'
import { HubMetrics } from './metrics.js'
import { AuditLog, type AuditLogOptions } from './audit/audit-log.js'
import { DeviceDirectory } from './registry/directory.js'
import { Registry } from './registry/registry.js'
import type { SqlClient } from './registry/sql.js'
import { StateStore } from './state/state.js'
import { TelemetryStore } from './store/telemetry.js'
import { PointWriter, type PointWriterOptions } from './store/writer.js'
import { buildControl, type Control, type ControlOptions } from './control.js'
import { Spool, type SpoolOptions } from './store/spool.js'
import { seriesOfLine } from './store/points.js'
import { RemoteBroker, type RemoteBrokerOptions } from './ingest/remote-broker.js'
import { mqttAuthRoutes } from './api/routes/mqtt-auth.js'
import { buildConsent, type ConsentOptions } from './consent/index.js'
import { RequestThrottle, type ThrottleKind } from './api/throttle.js'
import { RELAYED_REGISTRY_EVENTS, StateSync } from './cluster/state-sync.js'
import { ClusterBus } from './cluster/cluster-bus.js'
import { LeaderElection, type LeaderOptions } from './cluster/leader.js'
import { NodeLiveness, type LivenessOptions } from './cluster/liveness.js'

export interface HubOptions extends ControlOptions {
  /** InfluxDB 1.x base URL (managed or external). */
  influxUrl: string
  /** InfluxDB API token (`Authorization: Token …`, InfluxDB 2.x/3.x); default none: the URL's user:password, if any. */
  influxToken?: string
  /** Extra CA certificates (PEM) for an https: InfluxDB URL; default Node's own (and NODE_EXTRA_CA_CERTS). */
  influxCa?: string | Buffer
  /** InfluxDB database. Default `trellis`. */
  database?: string
  /** The registry's PostgreSQL database (`openPostgres(url)`); the hub migrates it, and closes it on `close()`. */
  sql: SqlClient
  logger?: Logger
  /** Broker settings other than authentication, which the hub provides. */
  broker?: Omit<BrokerOptions, 'authenticateDevice' | 'authenticateDeviceFromMemory' | 'logger'>
  /**
   * A broker running apart from the hub, reached as its service principal on a
   * persistent QoS 1 session (see docs/durability.md). The hub then runs no
   * broker of its own, and `broker` and the MQTT ports of `listen()` are
   * unused. Default none: the broker runs in-process.
   */
  remoteBroker?: RemoteBrokerOptions
  writer?: Omit<PointWriterOptions, 'url' | 'database' | 'logger' | 'spool'>
  /**
   * Where the hub keeps what must survive a restart: the spool of points
   * InfluxDB could not take, in `<dataDir>/spool`. Default none: such points
   * wait in memory only, and a restart loses them.
   */
  dataDir?: string
  /** The security audit log's batching and retention (default: kept 90 days). */
  audit?: AuditLogOptions
  /** Spool bounds (see `SpoolOptions`); used with `dataDir`. */
  spool?: Omit<SpoolOptions, 'dir' | 'logger'>
  /** `close()` flushes points to InfluxDB for this long, then spools the rest. Default 10000 ms. */
  shutdownDeadlineMs?: number
  api?: ApiOptions
  /** What one maker may hold: models, devices, mapping size (see `MakerQuotas` for defaults). */
  makerQuotas?: Partial<MakerQuotas>
  /** What rejected payloads may cost (see `DeadLetterLimits` for defaults). */
  rejections?: Partial<DeadLetterLimits>
  /** Largest telemetry payload, in bytes. Default 16384. */
  maxPayloadBytes?: number
  /** The window of device time readings are taken in; defaults in IngestOptions (5 minutes ahead, 21 days back). */
  ingest?: Pick<IngestOptions, 'maxClockAheadMs' | 'maxReadingAgeMs'>
  /**
   * Cluster mode: this node shares its broker's sessions and deliveries, and
   * its devices' state, with the other nodes on the same Redis (`redis://…`),
   * PostgreSQL (`sql`) and InfluxDB. Default none: a single node. Not with
   * `remoteBroker`.
   */
  redisUrl?: string
  /** The cluster's leader lock (see `LeaderOptions` for defaults); used with `redisUrl`. */
  leader?: LeaderOptions
  /** How soon a dead node's devices go offline on the others (see `LivenessOptions`); used with `redisUrl`. */
  liveness?: LivenessOptions
  /**
   * PEM certificate and key: the API serves HTTPS (and MQTT over WebSocket on
   * it becomes wss), and `listen({ mqttsPort })` adds MQTT over TLS. Default: none.
   */
  tls?: { cert: string | Buffer, key: string | Buffer }
  /** Grants, the owners' access log and fleet insight (k = 10 by default); see ConsentOptions. */
  consent?: ConsentOptions
}

export interface Hub {
  readonly registry: Registry
  readonly directory: DeviceDirectory
  /** The in-process broker; reading it in remote mode throws. */
  readonly broker: Broker
  /** The session with a broker apart from the hub, in remote mode; otherwise null. */
  readonly remote: RemoteBroker | null
  /** The device transport ingest and commands use: the in-process broker's, or the remote session. */
  readonly bus: DeviceBus
  readonly state: StateStore
  readonly store: TelemetryStore
  readonly writer: PointWriter
  readonly deadLetters: DeadLetters
  readonly metrics: HubMetrics
  readonly audit: AuditLog
  readonly api: Api
  readonly log: Logger
  /** Commands, presence, the live stream and schedules. */
  readonly control: Control
  /** In cluster mode (`redisUrl`), which node leads; otherwise null. */
  readonly leader: LeaderElection | null
  /**
   * Starts the HTTP API (with MQTT over WebSocket at `/mqtt`) and the MQTT
   * listener, plus MQTT over TLS when `mqttsPort` is given (needs `tls`); port 0 picks a free port.
   */
  listen (opts: { httpPort: number, mqttPort: number, mqttsPort?: number, host?: string }): Promise<{ httpUrl: string, mqttUrl: string, wsUrl: string, mqttsUrl?: string }>
  /** Stops accepting, flushes pending points, persists state, closes everything. */
  close (): Promise<void>
}

/**
 * Builds the hub and its in-process broker (or its session with a broker
 * apart, `remoteBroker`), ready to listen. Nothing here
 * reads the environment: `main.ts` does that.
 */
export async function buildHub (opts: HubOptions): Promise<Hub> {
  const log = opts.logger ?? pino({ level: 'silent' })
  const database = opts.database ?? 'trellis'
  const sql = opts.sql
  const registry = await Registry.open(sql, { makerQuotas: opts.makerQuotas })
  const directory = new DeviceDirectory(registry)
  const metrics = new HubMetrics()
  const deadLetters = new DeadLetters(opts.rejections)
  const influx = { url: opts.influxUrl, token: opts.influxToken, ca: opts.influxCa }
  const store = new TelemetryStore(influx, database)
  const stopEnsuringSchema = await store.ensureSchemaEventually(log)
  const spool = opts.dataDir ? Spool.open({ ...opts.spool, dir: path.join(opts.dataDir, 'spool'), logger: log }) : undefined
  const writer = new PointWriter({ ...influx, database, logger: log, ...opts.writer, spool })
  const state = new StateStore(registry)
  state.on('error', (err) => log.error({ err }, 'state could not be persisted'))
  await state.load()

  // In a cluster only the leader prunes the audit log; until the election exists, nobody does.
  let leads = (): boolean => !opts.redisUrl
  const audit = new AuditLog(registry, log.child({ component: 'audit' }), { ...opts.audit, shouldPrune: () => leads() })
  const remote = opts.remoteBroker ? new RemoteBroker(opts.remoteBroker, log.child({ component: 'remote-broker' })) : null
  if (opts.redisUrl && remote) throw new Error('redisUrl (cluster mode) runs the broker in each node: it does not go with remoteBroker')
  const clustered = Boolean(opts.redisUrl)
  const broker = remote ? null : await createBroker({
    ...opts.broker,
    redisUrl: opts.redisUrl,
    logger: log,
    authenticateDevice: (id, secret) => directory.authenticate(id, secret),
    authenticateDeviceFromMemory: (id, secret) => directory.authenticateFromMemory(id, secret),
    ownTopics: (id) => directory.peek(id)?.model.mapping?.topics ?? null,
    // In a cluster each failed login counts on every node: a guesser has one budget, not one per node.
    onAuthFailureSpent: (limit, key) => stateSync?.announceSpent(`mqtt:${limit}`, [key]),
    onSecurityEvent: (e) => audit.record({ actor: e.deviceId ? `device:${e.deviceId}` : 'anonymous', action: e.type, deviceId: e.deviceId, address: e.address, detail: e.detail }),
  })
  const inProcessBus = broker && new InProcessBus(broker, { clustered })
  const stateSync: StateSync | null = opts.redisUrl ? await StateSync.start(opts.redisUrl, state, inProcessBus!, log.child({ component: 'cluster' })) : null
  const clusterBus = stateSync && await ClusterBus.start(inProcessBus!, opts.redisUrl!, stateSync.node, log.child({ component: 'cluster' }))
  const bus: DeviceBus = clusterBus ?? inProcessBus ?? remote!
  // A node that dies without a word leaves its devices online elsewhere until its key expires.
  const liveness = stateSync && new NodeLiveness(opts.redisUrl!, stateSync.node, () => stateSync.holders(), log.child({ component: 'liveness' }), opts.liveness)
  liveness?.on('gone', (node: string) => { clusterBus!.forgetNode(node); stateSync!.forgetNode(node) })
  await liveness?.start()
  const leader = stateSync && new LeaderElection(opts.redisUrl!, stateSync.node, log.child({ component: 'leader' }), opts.leader)
  const control = await buildControl({ sql, bus, registry, directory, state, store, writer, deadLetters, metrics, log }, stateSync
    ? {
        ...opts,
        // Every node arms every schedule and automation; only the leader fires
        // time-driven ones, and a presence change fires rules on the node that holds the device.
        schedules: { ...opts.schedules, shouldFire: () => leader!.isLeader, onChange: () => stateSync.announceRules('schedules') },
        automations: { ...opts.automations, firesTimers: () => leader!.isLeader, judgesPresence: (id) => inProcessBus!.isConnectedHere(id), onChange: () => stateSync.announceRules('automations') },
        presence: { ...opts.presence, judges: (id) => inProcessBus!.isConnectedHere(id) },
      }
    : opts)
  if (stateSync) {
    stateSync.onRulesChanged = (kind) => {
      const reload = kind === 'schedules' ? control.scheduler.reload() : control.automations.reload()
      reload.catch((err: Error) => log.error({ err, kind }, 'rules changed on another node could not be read'))
    }
    // Registry and rule changes announced while Redis was away were not heard here: read them all again.
    stateSync.onRejoined = () => {
      directory.forgetAll()
      for (const rules of [control.scheduler, control.automations]) rules.reload().catch((err: Error) => log.error({ err }, 'rules could not be read again after a Redis outage'))
    }
    leads = () => leader!.isLeader
    leader!.start()
    relayRegistry(registry, stateSync, log)
  }
  // A rotated secret or a disabled device must not keep a session opened with the old credentials.
  registry.on('credentials-changed', (deviceId: string) => broker?.disconnect(deviceId))
  const ingest = await attachIngest({
    onAck: (deviceId, payload, remote) => control.commands.handleAck(deviceId, payload, { clustered, remote }),
    onReport: (deviceId, readings) => control.commands.handleReport(deviceId, readings),
    onReadings: (deviceId, readings) => control.automations.offerReadings(deviceId, readings),
    bus,
    directory,
    state,
    writer,
    deadLetters,
    metrics,
    log: log.child({ component: 'ingest' }),
    maxPayloadBytes: opts.maxPayloadBytes,
    ...opts.ingest,
  })
  await remote?.start()

  writer.on('rejected', (lines: string[], reason: string) => {
    metrics.rejected.labels('store-refused').inc(lines.length)
    metrics.deadLetters.inc(lines.length)
    for (const line of lines) {
      const series = seriesOfLine(line)
      const deviceId = series?.device ?? 'unknown'
      deadLetters.record({ deviceId, modelId: series?.model ?? null, makerId: series?.maker ?? null, topic: topics.telemetry(deviceId), reason }, Buffer.from(line))
    }
  })
  // Levels are gauges; counts since start are counters named …_total (Prometheus conventions).
  metrics.gauge('trellis_store_buffered_points', 'Points waiting to be written to InfluxDB.', () => writer.stats.buffered)
  metrics.counter('trellis_store_written_points_total', 'Points written to InfluxDB since start.', () => writer.stats.written)
  metrics.counter('trellis_store_failed_requests_total', 'Write requests to InfluxDB that failed and were retried.', () => writer.stats.failedRequests)
  metrics.counter('trellis_store_spooled_points_total', 'Points appended to the spool since start (InfluxDB down or slow).', () => writer.stats.spooled)
  metrics.counter('trellis_store_replayed_points_total', 'Spooled points written to InfluxDB since start.', () => writer.stats.replayed)
  metrics.gauge('trellis_spool_depth_points', 'Points in the spool waiting to be replayed.', () => writer.spoolDepth.points)
  metrics.gauge('trellis_spool_depth_bytes', 'Bytes of the spool on disk.', () => writer.spoolDepth.bytes)
  metrics.gauge('trellis_spool_fill_ratio', 'Spool bytes over its limit; at 1 new points wait in memory and devices are slowed.', () => spool ? spool.depth.bytes / spool.maxBytes : 0)
  writer.on('written', (_points: number, seconds: number, openedAt: number) => {
    metrics.influxWriteSeconds.observe(seconds)
    metrics.durableSeconds.observe((Date.now() - openedAt) / 1000)
  })
  const devicesOnline = new Set<string>()
  state.on('presence', (change: { deviceId: string, online: boolean }) => { if (change.online) devicesOnline.add(change.deviceId); else devicesOnline.delete(change.deviceId) })
  if (stateSync) metrics.gauge('trellis_cluster_redis_up', '1 while this node reaches the Redis the cluster shares, else 0 (devices on other nodes cannot be commanded, state is not shared).', () => stateSync.redisUp ? 1 : 0)
  metrics.gauge('trellis_devices_online', 'Devices online now (connected, or silent for less than their heartbeat allowance).', () => devicesOnline.size)
  if (broker) {
    metrics.gauge('trellis_broker_connections', 'MQTT connections.', () => broker!.stats.connections)
    metrics.counter('trellis_broker_auth_failures_total', 'MQTT connections refused for bad credentials.', () => broker!.stats.authFailures)
    metrics.counter('trellis_broker_publish_denied_total', 'Publishes refused by the topic policy.', () => broker!.stats.publishDenied)
    metrics.counter('trellis_broker_subscribe_denied_total', 'Subscriptions refused by the topic policy.', () => broker!.stats.subscribeDenied)
    metrics.counter('trellis_broker_auth_throttled_total', 'MQTT connections refused unchecked after too many failed authentications.', () => broker!.stats.authThrottled)
    metrics.counter('trellis_broker_publish_dropped_total', 'Device publishes dropped by the rate limit.', () => broker!.stats.publishDropped)
    metrics.counter('trellis_broker_rate_limit_disconnects_total', 'Devices disconnected for sustained publishing over the rate limit.', () => broker!.stats.rateLimitDisconnects)
    metrics.counter('trellis_broker_oversized_packets_total', 'MQTT connections cut for declaring a packet over the size limit.', () => broker!.stats.oversizedPackets)
    metrics.counter('trellis_broker_queue_dropped_total', 'Messages not queued for a client whose queue was full.', () => broker!.stats.queueDropped)
    metrics.counter('trellis_broker_reads_deferred_total', 'Reads of MQTT connections put off to a later slice of the event loop, so the API is served while ingest is busy.', () => broker!.stats.readsDeferred)
    metrics.gauge('trellis_broker_read_backlog', 'MQTT connections waiting for their slice of the event loop.', () => broker!.stats.readBacklog)
  }
  metrics.counter('trellis_audit_dropped_total', 'Audit entries dropped because too many were waiting to be stored.', () => audit.dropped)

  const consent = await buildConsent({ sql, store, state, deadLetters, log }, opts.consent)
  const makerNames = new Map<string, string>()
  const apiContext: Omit<ApiContext, 'throttle' | 'tokens'> = {
    registry,
    directory,
    state,
    store,
    writer,
    deadLetters,
    metrics,
    log,
    commands: control.commands,
    audit,
    consent,
    ...(stateSync && { redisUp: () => stateSync.redisUp }),
    defaultHeartbeatSeconds: (opts.presence?.defaultAllowanceMs ?? 600_000) / 1000,
    async makerName (id) {
      let name = makerNames.get(id)
      if (name === undefined) {
        name = (await registry.getMaker(id))?.name ?? id
        makerNames.set(id, name)
      }
      return name
    },
  }
  // In a cluster every node spends what the others spend: a flood spread over the nodes is throttled as one.
  const throttle = stateSync ? new RequestThrottle(opts.api?.rateLimits, (kind, keys) => stateSync.announceSpent(kind, keys)) : undefined
  if (stateSync && throttle) {
    stateSync.onSpent = (kind, keys) => {
      if (kind === 'mqtt:clientId' || kind === 'mqtt:address') for (const key of keys) broker?.applyAuthFailureSpent(kind === 'mqtt:clientId' ? 'clientId' : 'address', key)
      else throttle.applySpent(kind as ThrottleKind, keys)
    }
  }
  const api = buildApi(apiContext, log, {
    ...opts.api,
    ...(throttle && { throttle }),
    ...(opts.tls && { https: opts.tls }),
    extraRoutes: (ctx) => [
      ...control.routes(ctx),
      ...(opts.remoteBroker ? mqttAuthRoutes(ctx, opts.remoteBroker.secret) : []),
      ...(opts.api?.extraRoutes?.(ctx) ?? []),
    ],
  })
  const webSocket = broker && attachWebSocketListener(api.app.server, broker, { maxPayload: (opts.broker?.maxPacketBytes ?? 64 * 1024) + 1024 })
  if (broker) {
    // A request waits for its answer on the broker's event loop: meanwhile the broker reads devices in slices
    // (broker/src/read-slices.ts). An event stream is not an answer awaited; it would keep slices on for good.
    const inProcess = broker
    api.app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.config.eventStream !== true) reply.raw.once('close', inProcess.awaitAnswer())
      done()
    })
  }

  let closed = false
  return {
    get broker (): Broker {
      if (!broker) throw new Error('this hub runs apart from its broker (remoteBroker): there is no in-process broker')
      return broker
    },
    leader,
    remote, bus, registry, directory, state, store, writer, deadLetters, metrics, audit, api, log, control,
    async listen ({ httpPort, mqttPort, mqttsPort, host = '127.0.0.1' }) {
      if (mqttsPort !== undefined && !opts.tls) throw new Error('mqttsPort needs the tls option (a certificate and key)')
      const mqtt = broker ? await broker.listen({ port: mqttPort, host }) : null
      const mqtts = mqttsPort === undefined || !broker ? undefined : await broker.listen({ port: mqttsPort, host, tls: opts.tls })
      await api.app.listen({ port: httpPort, host })
      const address = api.app.server.address()
      const port = typeof address === 'object' && address ? address.port : httpPort
      const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      const secure = Boolean(opts.tls)
      return {
        httpUrl: `${secure ? 'https' : 'http'}://${shown}:${port}`,
        mqttUrl: mqtt ? `mqtt://${shown}:${mqtt.port}` : opts.remoteBroker!.url,
        wsUrl: `${secure ? 'wss' : 'ws'}://${shown}:${port}/mqtt`,
        ...(mqtts && { mqttsUrl: `mqtts://${shown}:${mqtts.port}` }),
      }
    },
    async close () {
      if (closed) return
      closed = true
      // Open event streams would hold the HTTP server open; end them first.
      control.stopAccepting()
      await leader?.close()
      await liveness?.close()
      stopEnsuringSchema()
      webSocket?.close()
      await api.app.close()
      await control.close()
      await (broker ?? remote!).close()
      await ingest.detach()
      inProcessBus?.close()
      await clusterBus?.close()
      await stateSync?.close()
      await writer.close(opts.shutdownDeadlineMs ?? 10_000)
      store.close()
      await state.close()
      await audit.close()
      await consent.close()
      await registry.close()
    },
  }
}

/**
 * Every node hears what any node's registry changed: what this node's
 * registry emits is announced, and what another node announces is emitted
 * here, so the directory, the token cache, the broker's sessions and the
 * command queue follow it as they follow a local change.
 */
function relayRegistry (registry: Registry, sync: StateSync, log: Logger): void {
  let relaying = false
  for (const event of RELAYED_REGISTRY_EVENTS) {
    registry.on(event, (id: string) => { if (!relaying) sync.announceRegistry(event, id) })
  }
  sync.onRegistryChanged = (event, id) => {
    relaying = true
    try {
      registry.emit(event, id)
    } catch (err) {
      log.error({ err, event, id }, 'a registry change from another node could not be followed here')
    } finally {
      relaying = false
    }
  }
}
