import { EventEmitter } from 'node:events'
import type { AedesPublishPacket, Client, Subscription } from 'aedes'
import { hasChannel, outboundChannels, parseTopic, topics, type OutboundChannel } from '@trellis/device-sdk/topics'
import type { Broker } from './broker.js'

/**
 * What the hub needs of the device transport, and nothing more: messages from
 * devices with a step that holds their acknowledgement, commands to devices,
 * and whether a device can take one now. Implementations: `InProcessBus`
 * (aedes in this process, below), `RemoteBroker` (the hub's MQTT session with
 * a broker apart, `hub/src/ingest/remote-broker.ts`), and fakes in tests.
 */
export interface DeviceBus {
  /**
   * Hands every message of `channel` to `handler` (null stops). One handler
   * per channel; a later call replaces it. A QoS 1 message stays
   * unacknowledged until the handler calls `done`: in-process the device's
   * PUBACK waits, remotely the hub session's. `done(err)` withholds the
   * acknowledgement and drops the connection, so the message comes again.
   */
  onDelivery (channel: OutboundChannel, handler: DeliveryHandler | null): void
  /** Publishes a command to a device at QoS 1; `done` once the transport has it. */
  /** `topic`: the device's own command topic, when its mapping declares one. Default `devices/{id}/commands`. */
  publishCommand (deviceId: string, payload: Buffer, done: (err?: Error) => void, topic?: string): void
  /**
   * True when a command published now reaches the device: it is connected and
   * subscribed to its commands (remotely: its last presence said online, and
   * its persistent session keeps its subscription).
   */
  canReceiveCommands (deviceId: string): boolean
  /** Messages received and waiting for their delivery to start or complete: a measure of how far behind the hub is. */
  readonly backlog: number
  /**
   * `connect` (a device's connection is up), `disconnect` (its last connection
   * is gone) and `commands-ready` (it can now receive commands: see
   * `canReceiveCommands`), each with the device id. A bus that does not see
   * connections (remote) emits only `commands-ready`.
   */
  on (event: DeviceBusEvent, listener: (deviceId: string) => void): unknown
  off (event: DeviceBusEvent, listener: (deviceId: string) => void): unknown
}

export type DeviceBusEvent = 'connect' | 'disconnect' | 'commands-ready'

/**
 * One message from a device. aedes' and mqtt.js' packets both have this shape,
 * so a bus hands its own packet over without a copy.
 */
export interface DevicePacket {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  /**
   * True when another node of a cluster received it from the device (only
   * acks are handed over from other nodes: the node that sent the command
   * waits for its ack). Default false.
   */
  readonly remote?: boolean
}

export type DeliveryHandler = (deviceId: string, packet: DevicePacket, done: (err?: Error | null) => void) => void

type AedesDeliver = (packet: AedesPublishPacket, done: () => void) => void

/**
 * The bus over the in-process broker. Telemetry is taken in the broker's
 * `beforeAck` step, before aedes writes the PUBACK (the only place to hold it,
 * see `BeforeAck`); the other channels through aedes subscriptions, which
 * complete when `done` is called. aedes' internals (`clients`, `mq`) stay here.
 */
export class InProcessBus extends EventEmitter implements DeviceBus {
  private readonly subscribed = new Map<OutboundChannel, AedesDeliver>()
  /**
   * Connections aedes has finished setting up (`clientReady`). Between
   * `client` and `clientReady` a persistent session is being restored: a
   * message published then is delivered live and also queued for the session,
   * so the device got a command twice (test/hostile/release.int.test.ts).
   */
  private readonly ready = new WeakSet<Client>()
  private readonly aedes: Broker['aedes']
  /** aedes's message emitter (mqemitter), which reports the deliveries waiting for a slot as `length`. */
  private readonly emitter: { length?: number } | undefined

  /**
   * `clustered`: the broker shares its emitter with other nodes (`redisUrl`).
   * Events and presence are then handled only on the node the device is
   * connected to; acks from every node, marked `remote` when from another.
   */
  constructor (private readonly broker: Broker, private readonly opts: { clustered?: boolean } = {}) {
    super()
    this.aedes = broker.aedes
    this.emitter = (broker.aedes as unknown as { mq?: { length?: number } }).mq
    this.aedes.on('client', this.onClient)
    this.aedes.on('clientReady', this.onClientReady)
    this.aedes.on('clientDisconnect', this.onClientDisconnect)
    this.aedes.on('subscribe', this.onSubscribe)
  }

  onDelivery (channel: OutboundChannel, handler: DeliveryHandler | null): void {
    if (channel === 'telemetry') {
      // The topic policy has already let only the device's own outbound channels through.
      this.broker.beforeAck = handler && ((deviceId, packet, done) => {
        // A device's own topics (outside devices/, let through by its mapping's tree) are read as telemetry too.
        if (!hasChannel(packet.topic, 'telemetry') && packet.topic.startsWith('devices/')) return done(null)
        handler(deviceId, packet as AedesPublishPacket & DevicePacket, done)
      })
      return
    }
    const previous = this.subscribed.get(channel)
    if (previous) {
      this.aedes.unsubscribe(topics.all(channel), previous as never, () => {})
      this.subscribed.delete(channel)
    }
    if (!handler) return
    const aedesId = this.aedes.id
    const clustered = this.opts.clustered === true
    const deliver: AedesDeliver = (packet, done) => {
      const deviceId = parseTopic(packet.topic)?.deviceId
      if (deviceId === undefined) return done()
      // aedes stamps each packet with the id of the broker that received it.
      if (clustered && (packet as { brokerId?: string }).brokerId !== aedesId) {
        if (channel !== 'acks') return done()
        return handler(deviceId, { topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, remote: true }, done)
      }
      handler(deviceId, packet as AedesPublishPacket & DevicePacket, done)
    }
    this.subscribed.set(channel, deliver)
    this.aedes.subscribe(topics.all(channel), deliver as never, () => {})
  }

  publishCommand (deviceId: string, payload: Buffer, done: (err?: Error) => void, topic?: string): void {
    this.aedes.publish({ cmd: 'publish', topic: topic ?? topics.commands(deviceId), payload, qos: 1, retain: false, dup: false }, done)
  }

  canReceiveCommands (deviceId: string): boolean {
    const client = this.clientOf(deviceId)
    return client !== undefined && this.ready.has(client) && Boolean(client.subscriptions?.[topics.commands(deviceId)])
  }

  /** True when the device has a connection to this node's broker. */
  isConnectedHere (deviceId: string): boolean {
    return this.clientOf(deviceId) !== undefined
  }

  /** The devices connected to this node's broker now. */
  devicesHere (): string[] {
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients
    return Object.values(clients).flatMap((client) => client?.principal?.kind === 'device' ? [client.id] : [])
  }

  get backlog (): number {
    return this.emitter?.length ?? 0
  }

  /** Stops handing messages over and stops listening to the broker. */
  close (): void {
    for (const channel of outboundChannels) this.onDelivery(channel, null)
    this.aedes.off('client', this.onClient)
    this.aedes.off('clientReady', this.onClientReady)
    this.aedes.off('clientDisconnect', this.onClientDisconnect)
    this.aedes.off('subscribe', this.onSubscribe)
  }

  private clientOf (deviceId: string): (Client & { subscriptions?: Record<string, unknown> }) | undefined {
    return (this.aedes as unknown as { clients: Record<string, (Client & { subscriptions?: Record<string, unknown> }) | undefined> }).clients[deviceId]
  }

  private readonly onClient = (client: Client) => {
    if (client.principal?.kind === 'device') this.emit('connect', client.id)
  }

  /** A persistent session comes back with its subscriptions: it can take commands at once. */
  private readonly onClientReady = (client: Client) => {
    this.ready.add(client)
    if (client.principal?.kind === 'device' && this.canReceiveCommands(client.id)) this.emit('commands-ready', client.id)
  }

  /** Emitted only when no connection of the device is left: a takeover by a new connection is no disconnect. */
  private readonly onClientDisconnect = (client: Client) => {
    if (client.principal?.kind === 'device' && !this.clientOf(client.id)) this.emit('disconnect', client.id)
  }

  private readonly onSubscribe = (subscriptions: Subscription[], client: Client) => {
    if (client?.principal?.kind === 'device' && subscriptions.some((s) => s.topic === topics.commands(client.id))) this.emit('commands-ready', client.id)
  }
}
