import { EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { Ack, Command, type Presence } from './envelopes.js'
import { checkValue, resolveCapabilities, type CapabilityDeclaration, type ModelCapability, type ReadingValue } from './capabilities.js'
import { topics } from './topics.js'
import { endWithin } from './end-within.js'

export interface ConnectDeviceOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883` or `mqtts://…`. */
  url: string
  deviceId: string
  secret: string
  /** The device's model name, as its maker declared it: refusals name it (`… for model frostline-f2`). Default: unnamed (`… for this device`). */
  model?: string
  /**
   * The device's capabilities, as its model declares them. When given, the
   * SDK refuses commands that set anything else (or a value out of range)
   * before your handler runs. Default: none declared, no local validation.
   */
  capabilities?: readonly CapabilityDeclaration[]
  /** First reconnect delay in ms; doubles up to `maxReconnectDelayMs`. Default 500. */
  reconnectDelayMs?: number
  /** Ceiling of the reconnect backoff in ms. Default 30000. */
  maxReconnectDelayMs?: number
  /** MQTT keepalive in seconds. Default 30. */
  keepalive?: number
  /** Reject the first connection attempt after this many ms. Default 10000. */
  connectTimeoutMs?: number
  /**
   * False (the default): commands arrive as canonical JSON, go to `onCommand`
   * handlers, and the SDK acks them. True for a device that speaks its model's
   * own dialect: each command payload is emitted as it is, as a `rawCommand`
   * event (a Buffer), and the device answers in its dialect with
   * `publishRaw(ack, 'acks')`.
   */
  rawCommands?: boolean
  /**
   * Command handlers by capability or action, installed before the device
   * subscribes: commands the hub queued while the device was away arrive
   * right after it connects, before `onCommand` could be called. Default none.
   */
  handlers?: Record<string, CommandHandler>
  /** Extra mqtt.js options (TLS settings, for instance). */
  mqtt?: Partial<IClientOptions>
}

/** What a command handler receives for a `set` of one capability or for an action. */
export interface CommandContext {
  command: Command
  device: Device
}

/**
 * A handler for one capability (`value` is the requested value) or one action
 * (`value` is the action's params). Return the new state of what changed, or
 * nothing to report the requested values as the new state. Throw to answer
 * `error` with the error's message.
 */
export type CommandHandler = (value: any, ctx: CommandContext) => void | Record<string, ReadingValue> | Promise<void | Record<string, ReadingValue>>

/**
 * A connected device. Events: `connect`, `disconnect`, `reconnect`,
 * `command` (a valid command, before its handler runs), `rawCommand` (with
 * `rawCommands`) and `error` (a command it ignored, an ack or presence it
 * could not send; optional: unheard, such failures are dropped, never thrown).
 */
export interface Device extends EventEmitter {
  readonly id: string
  readonly connected: boolean
  /**
   * Publishes canonical readings (QoS 1) stamped with `ts` (default: now, taken
   * here, so a re-sent message is the same point); resolves once the broker
   * acknowledged them. Unacknowledged readings are kept and re-sent after a
   * reconnect.
   */
  report (readings: Record<string, unknown>, ts?: number | Date): Promise<void>
  /** Publishes a device event (QoS 1): an alarm, a door left open. */
  event (type: string, data?: Record<string, unknown>, ts?: number | Date): Promise<void>
  /** Publishes a raw payload on the device's telemetry topic: for devices that speak their model's own dialect. */
  publishRaw (payload: string | Buffer, channel?: 'telemetry' | 'events' | 'acks'): Promise<void>
  /** Handles commands that set `capability` or invoke `action`. */
  onCommand (capabilityOrAction: string, handler: CommandHandler): this
  /**
   * Waits for messages in flight to be acknowledged, publishes retained
   * `offline` and disconnects cleanly, all within `timeoutMs` (default 5000).
   * Past it, or when the broker cannot be reached, the connection is dropped
   * and what the broker never acknowledged is rejected with a
   * `DeviceClosedError`. Publishing after `close()` rejects at once.
   */
  close (opts?: { timeoutMs?: number }): Promise<void>
  /** Drops the connection without a goodbye, as a crash or power cut would: the broker publishes the last will. */
  kill (): void
  /** The underlying mqtt.js client, for what this interface does not cover. */
  readonly client: MqttClient
}

export class DeviceConnectError extends Error {
  constructor (message: string, readonly code?: number) { super(message) }
}

/** A publish that `close()` cut short, or one made after it. */
export class DeviceClosedError extends Error {}

/**
 * Connects a device to the broker: client id = username = device id, password =
 * secret; `offline` is set as its retained last will and `online` is published
 * on connect. Resolves on the first successful connection; rejects when the
 * broker refuses the credentials. Reconnects with exponential backoff.
 */
export async function connectDevice (opts: ConnectDeviceOptions): Promise<Device> {
  const device = new SdkDevice(opts)
  await device.ready
  return device
}

class SdkDevice extends EventEmitter implements Device {
  readonly id: string
  private readonly model?: string
  readonly client: MqttClient
  readonly ready: Promise<void>
  private readonly handlers = new Map<string, CommandHandler>()
  private readonly capabilities?: Map<string, ModelCapability>
  private readonly baseDelay: number
  private readonly maxDelay: number
  private readonly rawCommands: boolean
  private closing?: Promise<void>

  constructor (opts: ConnectDeviceOptions) {
    super()
    this.id = opts.deviceId
    this.model = opts.model
    for (const [name, handler] of Object.entries(opts.handlers ?? {})) this.handlers.set(name, handler)
    this.baseDelay = opts.reconnectDelayMs ?? 500
    this.maxDelay = opts.maxReconnectDelayMs ?? 30_000
    this.rawCommands = opts.rawCommands ?? false
    if (opts.capabilities) {
      this.capabilities = new Map(resolveCapabilities(opts.capabilities).map((c) => [c.name, c]))
    }
    this.client = mqtt.connect(opts.url, {
      clientId: opts.deviceId,
      username: opts.deviceId,
      password: opts.secret,
      protocolVersion: 4,
      // A persistent session keeps the command subscription and QoS 1
      // commands queued while the device is briefly away.
      clean: false,
      keepalive: opts.keepalive ?? 30,
      reconnectPeriod: this.baseDelay,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      will: { topic: topics.presence(opts.deviceId), payload: Buffer.from('offline'), qos: 1, retain: true },
      ...opts.mqtt,
    })
    this.client.on('reconnect', () => {
      // mqtt.js retries at a fixed period; grow it so a fleet does not stampede a restarting broker.
      const next = Math.min(this.maxDelay, this.client.options.reconnectPeriod! * 2)
      this.client.options.reconnectPeriod = Math.round(next * (0.8 + Math.random() * 0.4))
      this.emit('reconnect')
    })
    this.client.on('connect', () => {
      // An ack follows the PUBACK of its command at once; Nagle would hold it
      // until the broker's delayed ACK, some 40 ms later.
      ;(this.client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
      this.client.options.reconnectPeriod = this.baseDelay
      // Back while closing, only to flush what is in flight: it is not coming online.
      if (!this.closing) void this.announce('online').catch((err) => this.fail(err))
      this.emit('connect')
    })
    this.client.on('close', () => this.emit('disconnect'))
    this.client.on('message', (topic, payload) => { void this.dispatch(topic, payload) })

    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup()
        this.client.end(true)
        reject(new DeviceConnectError(`could not connect to ${opts.url} within ${opts.connectTimeoutMs ?? 10_000} ms`))
      }, opts.connectTimeoutMs ?? 10_000)
      const onConnect = () => {
        cleanup()
        this.client.subscribe(topics.commands(this.id), { qos: 1 }, (err, granted) => {
          if (err) return reject(err)
          if (granted?.some((g) => g.qos === 128)) return reject(new DeviceConnectError(`the broker refused the subscription to ${topics.commands(this.id)}`))
          resolve()
        })
      }
      const onError = (err: Error & { code?: number }) => {
        // CONNACK 4 (bad credentials) or 5 (not authorized): retrying will not help.
        if (err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135) {
          cleanup()
          this.client.end(true)
          reject(new DeviceConnectError(`the broker refused device ${this.id}: ${err.message}`, err.code))
        }
      }
      const cleanup = () => {
        clearTimeout(timer)
        this.client.off('connect', onConnect)
        this.client.off('error', onError)
      }
      this.client.on('connect', onConnect)
      this.client.on('error', onError)
    })
  }

  get connected (): boolean { return this.client.connected }

  async report (readings: Record<string, unknown>, ts?: number | Date): Promise<void> {
    // Always an explicit timestamp: a re-sent message stamped on arrival would be a second point.
    const body = { ts: ts === undefined ? Date.now() : typeof ts === 'number' ? ts : ts.getTime(), readings }
    await this.publish(topics.telemetry(this.id), JSON.stringify(body))
  }

  async event (type: string, data?: Record<string, unknown>, ts?: number | Date): Promise<void> {
    const body = { type, ...(data && { data }), ...(ts !== undefined && { ts: typeof ts === 'number' ? ts : ts.getTime() }) }
    await this.publish(topics.events(this.id), JSON.stringify(body))
  }

  async publishRaw (payload: string | Buffer, channel: 'telemetry' | 'events' | 'acks' = 'telemetry'): Promise<void> {
    await this.publish(topics[channel](this.id), payload)
  }

  /** A QoS 1 publish of the appliance's own; rejected with a reason once `close()` has begun. */
  private async publish (topic: string, payload: string | Buffer): Promise<void> {
    if (this.closing) throw new DeviceClosedError(`device ${this.id} is closed`)
    try {
      await this.client.publishAsync(topic, payload, { qos: 1 })
    } catch (err) {
      // close() settles what the broker never acknowledged: say so, not mqtt.js's "Message removed".
      if (this.closing) throw new DeviceClosedError(`device ${this.id} closed before the broker acknowledged this message`)
      throw err
    }
  }

  onCommand (capabilityOrAction: string, handler: CommandHandler): this {
    this.handlers.set(capabilityOrAction, handler)
    return this
  }

  async close ({ timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutDown(timeoutMs)
    await this.closing
  }

  private async shutDown (timeoutMs: number): Promise<void> {
    // What is in flight goes first, then the retained goodbye.
    await endWithin(this.client, timeoutMs, async () => await this.announce('offline'))
  }

  kill (): void {
    // Destroying the socket without DISCONNECT makes the broker publish the will.
    this.client.options.reconnectPeriod = 0
    this.client.end(true)
  }

  /**
   * Reports a failure nobody awaits (a command it could not read, an ack or
   * presence it could not send) to `error` listeners. Without a listener it is
   * dropped: an unheard `error` event would throw and take the appliance's
   * process down. A publish cut short by `close()` or `kill()` is no failure.
   */
  private fail (err: Error): void {
    if (this.client.disconnecting) return
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  private async announce (presence: Presence): Promise<void> {
    await this.client.publishAsync(topics.presence(this.id), presence, { qos: 1, retain: true })
  }

  private async dispatch (topic: string, payload: Buffer): Promise<void> {
    if (topic !== topics.commands(this.id)) return
    if (this.rawCommands) {
      this.emit('rawCommand', payload)
      return
    }
    let json: unknown
    try {
      json = JSON.parse(payload.toString('utf8'))
    } catch (err) {
      this.fail(new Error(`ignored a command that is not JSON: ${(err as Error).message}`))
      return
    }
    const parsed = Command.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const reason = `malformed command: ${issue.path.join('.') || '(root)'}: ${issue.message}`
      const id = (json as { id?: unknown } | null)?.id
      // With an id the hub can be told why; without one there is nobody to answer.
      if (typeof id === 'string' && id.length > 0 && id.length <= 64) {
        await this.client.publishAsync(topics.acks(this.id), JSON.stringify({ id, status: 'error', error: reason.slice(0, 512) }), { qos: 1 }).catch((err) => this.fail(err))
      } else {
        this.fail(new Error(`ignored a ${reason}`))
      }
      return
    }
    const command = parsed.data
    this.emit('command', command)
    const ack = await this.execute(command)
    await this.client.publishAsync(topics.acks(this.id), JSON.stringify(Ack.parse(ack)), { qos: 1 }).catch((err) => this.fail(err))
  }

  private async execute (command: Command): Promise<Ack> {
    const fail = (error: string): Ack => ({ id: command.id, status: 'error', error })
    const state: Record<string, ReadingValue> = {}
    try {
      const set = Object.entries(command.set ?? {})
      // Everything is checked before any handler runs, so a refused command changes nothing.
      for (const [name, value] of set) {
        if (this.capabilities) {
          const cap = this.capabilities.get(name)
          if (!cap) return fail(`this device has no capability ${name}`)
          if (!cap.settable) return fail(`${name} cannot be set`)
          const problem = checkValue(cap, value, this.model)
          if (problem) return fail(problem)
        }
        if (!this.handlers.has(name)) return fail(`this device does not handle ${name}`)
      }
      if (command.action && !this.handlers.has(command.action)) return fail(`this device has no action ${command.action}`)
      for (const [name, value] of set) {
        const changed = await this.handlers.get(name)!(value, { command, device: this })
        Object.assign(state, changed ?? { [name]: value })
      }
      if (command.action) {
        const changed = await this.handlers.get(command.action)!(command.params ?? {}, { command, device: this })
        if (changed) Object.assign(state, changed)
      }
    } catch (err) {
      return fail((err as Error).message || String(err))
    }
    return { id: command.id, status: 'ok', ...(Object.keys(state).length > 0 && { state }) }
  }
}
