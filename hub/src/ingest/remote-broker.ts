import { EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { Duplex } from 'node:stream'
import type { DeliveryHandler, DeviceBus, DevicePacket } from '@trellis/broker'
import { Presence, endWithin, outboundChannels, parseTopic, topics, type OutboundChannel } from '@trellis/device-sdk'

export interface RemoteBrokerOptions {
  /** The broker's URL, `mqtt://host:port` or `mqtts://…`. */
  url: string
  /** The service principal's name, as the broker's `service` option knows it. */
  username: string
  secret: string
  /**
   * Client id of the hub's persistent session. A restarted hub must use the
   * same one to receive what the broker kept for it. Default `hub:<username>`,
   * which no device id can be (device ids have no colon), so no device can take the session over.
   */
  clientId?: string
  /** How long `start()` waits for the first connection. Default 30000 ms. */
  connectTimeoutMs?: number
  /** How long `close()` waits for the broker to acknowledge commands in flight. Default 2000 ms. */
  closeTimeoutMs?: number
  /** Extra mqtt.js options (TLS trust, for example). Default none. */
  mqtt?: IClientOptions
}

/** Refusing mqtt.js' own PUBACK: this link sends it itself, once the message is handled. */
const ackedLater = new Error('acknowledged once handled')

/**
 * The device bus over the hub's session with a broker running apart from it:
 * an mqtt.js client with a persistent session (`clean: false`, fixed client id)
 * subscribed at QoS 1 to every device's outbound channels (the broker's policy
 * lets only the service principal do so).
 *
 * A message is acknowledged (PUBACK) only once it is handled, telemetry only
 * once its readings are durable, so the broker keeps and re-sends to the
 * session whatever a hub that died had not made durable. mqtt.js handles
 * incoming packets one at a time and sends the PUBACK when its handler
 * returns (`customHandleAcks` and `handleMessage` alike): holding that handler
 * until a batch is written would let one message through per batch. So the
 * handler returns at once without PUBACK, and the PUBACKs are written here,
 * in the order the messages came (MQTT-4.6.0-2), as they become durable.
 *
 * No device connects here, so this bus emits no `connect` or `disconnect`:
 * presence comes from the devices' retained presence and wills. A device whose
 * presence says `online` counts as able to take commands (`commands-ready`):
 * the device SDK keeps a persistent session, whose command subscription the
 * broker keeps, and queues QoS 1 commands in.
 */
export class RemoteBroker extends EventEmitter implements DeviceBus {
  readonly stats = { received: 0, acknowledged: 0, notDurable: 0, reconnects: 0 }
  private readonly client: MqttClient
  private readonly handlers = new Map<OutboundChannel, DeliveryHandler>()
  /** Devices whose last presence message said online. */
  private readonly online = new Set<string>()
  /** PUBACKs owed on the current connection, oldest first; a new connection starts afresh (the broker re-sends). */
  private owed: { stream: Duplex | null, queue: Array<{ messageId: number, ready: boolean }> } = { stream: null, queue: [] }

  constructor (private readonly opts: RemoteBrokerOptions, private readonly log: Logger) {
    super()
    this.client = mqtt.connect(opts.url, {
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      ...opts.mqtt,
      clientId: opts.clientId ?? `hub:${opts.username}`,
      username: opts.username,
      password: opts.secret,
      clean: false,
      protocolVersion: 4,
      // Not before ingest is attached: the broker sends what it kept for the session right after CONNACK.
      manualConnect: true,
    })
    this.client.handleMessage = (packet, callback) => this.receive(packet, callback)
    this.client.on('connect', (connack) => {
      // A command's PUBLISH follows a PUBACK of telemetry, or the other way round,
      // within one round trip: Nagle would hold the second until the broker's
      // delayed ACK, 40 ms or more, on every command.
      ;(this.client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
      this.owed = { stream: this.client.stream as unknown as Duplex, queue: [] }
      this.log.info({ url: opts.url, sessionPresent: connack.sessionPresent }, 'connected to the broker')
    })
    this.client.on('reconnect', () => { this.stats.reconnects++ })
    this.client.on('offline', () => this.log.warn({ url: opts.url }, 'broker connection lost; reconnecting'))
    this.client.on('error', (err) => this.log.error({ err: err.message }, 'broker connection error'))
  }

  /** Connects and subscribes; resolves once the session is subscribed to every device channel. */
  async start (): Promise<void> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 30_000
    let onRefusal: (err: Error & { code?: number }) => void = () => {}
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to the broker at ${this.opts.url} within ${timeoutMs} ms`)), timeoutMs)
      this.client.once('connect', () => { clearTimeout(timer); resolve() })
      // Bad credentials will not get better by retrying; an unreachable broker may.
      onRefusal = (err) => {
        if (err.code !== 4 && err.code !== 5) return
        clearTimeout(timer)
        this.client.end(true)
        reject(new Error(`the broker at ${this.opts.url} refused the service credentials: ${err.message}`))
      }
      this.client.on('error', onRefusal)
    })
    this.client.connect()
    await connected.finally(() => this.client.off('error', onRefusal))
    const granted = await this.client.subscribeAsync(outboundChannels.map((c) => topics.all(c)), { qos: 1 })
    const refused = granted.filter((g) => g.qos !== 1)
    if (refused.length > 0) throw new Error(`the broker refused the hub's subscriptions (${refused.map((g) => g.topic).join(', ')}): are these the service credentials?`)
  }

  onDelivery (channel: OutboundChannel, handler: DeliveryHandler | null): void {
    if (handler) this.handlers.set(channel, handler)
    else this.handlers.delete(channel)
  }

  /** Publishes a command at QoS 1; `done` is called once the broker has it (its PUBACK). */
  publishCommand (deviceId: string, payload: Buffer, done: (err?: Error) => void, topic?: string): void {
    // The broker apart grants the service the canonical tree only (broker/src/policy.ts).
    if (topic !== undefined && topic !== topics.commands(deviceId)) return done(new Error(`a broker apart carries only devices/{id}/… topics, not ${topic}; run the broker in the hub for mappings with their own topics`))
    this.client.publish(topics.commands(deviceId), payload, { qos: 1, retain: false }, (err) => done(err ?? undefined))
  }

  canReceiveCommands (deviceId: string): boolean {
    return this.online.has(deviceId)
  }

  /** Messages received on this connection whose PUBACK is still owed. */
  get backlog (): number {
    return this.owed.queue.length
  }

  /**
   * Leaves the session with DISCONNECT: the broker keeps it, and what is not
   * acknowledged, for the next start. Commands in flight get until
   * `closeTimeoutMs` for the broker's PUBACK; with the broker gone, the
   * session is dropped then and they fail, so a shutdown never waits on it.
   */
  async close (): Promise<void> {
    const unacknowledged = await endWithin(this.client, this.opts.closeTimeoutMs ?? 2_000)
    if (unacknowledged > 0) this.log.warn({ commands: unacknowledged }, 'left the broker with commands it never acknowledged')
  }

  private receive (packet: IPublishPacket, callback: (err?: Error) => void): void {
    this.stats.received++
    if (packet.qos === 0 || packet.messageId === undefined) {
      this.dispatch(packet, () => {})
      return callback()
    }
    const owed = this.owed
    const slot = { messageId: packet.messageId, ready: false }
    owed.queue.push(slot)
    this.dispatch(packet, (err) => {
      if (err) {
        this.stats.notDurable++
        // Without a PUBACK the broker re-sends it, but only on a new connection: start one.
        if (owed.stream === this.owed.stream) {
          this.log.warn({ topic: packet.topic, err: err.message }, 'message not made durable; reconnecting so the broker sends it again')
          this.owed.stream?.destroy()
        }
        return
      }
      slot.ready = true
      this.flush(owed)
    })
    callback(ackedLater)
  }

  private dispatch (packet: IPublishPacket, done: (err?: Error | null) => void): void {
    const parsed = parseTopic(packet.topic)
    if (!parsed) return done()
    if (parsed.channel === 'presence') this.notePresence(parsed.deviceId, packet.payload as Buffer)
    const handler = this.handlers.get(parsed.channel as OutboundChannel)
    if (!handler) return done()
    handler(parsed.deviceId, packet as IPublishPacket & DevicePacket, done)
  }

  private notePresence (deviceId: string, payload: Buffer): void {
    const presence = Presence.safeParse(payload.toString('utf8'))
    if (!presence.success) return
    if (presence.data === 'online') {
      this.online.add(deviceId)
      this.emit('commands-ready', deviceId)
    } else {
      this.online.delete(deviceId)
    }
  }

  private flush (owed: RemoteBroker['owed']): void {
    // A connection that is gone takes its debts with it: the broker re-sends those messages on the next one.
    if (owed.stream !== this.owed.stream || !owed.stream || owed.stream.destroyed) return
    while (owed.queue.length > 0 && owed.queue[0].ready) {
      const { messageId } = owed.queue.shift()!
      owed.stream.write(Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]))
      this.stats.acknowledged++
    }
  }
}
