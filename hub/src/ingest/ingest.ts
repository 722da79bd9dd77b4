import type { Logger } from 'pino'
import type { DeliveryHandler, DeviceBus, DevicePacket } from '@trellis/broker'
import { DeviceEvent, Presence, hasChannel, type OutboundChannel } from '@trellis/device-sdk'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import { normalizeTelemetry, type NormalizeResult, type Reading } from '../normalize/index.js'
import type { GatewayEntries, GatewayEntry } from '../normalize/gateway.js'
import type { StateStore } from '../state/state.js'
import type { PointWriter } from '../store/writer.js'
import type { HubMetrics } from '../metrics.js'
import type { DeadLetters } from './dead-letters.js'

export interface IngestOptions {
  /**
   * The device transport. A QoS 1 telemetry delivery completes only once its
   * readings are durable, so the bus holds its acknowledgement until then.
   */
  bus: DeviceBus
  directory: DeviceDirectory
  state: StateStore
  writer: PointWriter
  deadLetters: DeadLetters
  metrics: HubMetrics
  log: Logger
  /** Largest telemetry payload accepted, in bytes. Default 16384. */
  maxPayloadBytes?: number
  /**
   * While the point writer holds this many points, QoS 0 telemetry is shed and
   * counted (`trellis_ingest_rejected_total{reason="overload-shed"}`): QoS 0
   * promises no delivery, and queueing it under overload would grow memory
   * without bound and delay QoS 1 devices behind it. Keep it below the
   * writer's `maxBufferedPoints` (default 100000), so that QoS 0 is shed before
   * QoS 1 is refused. Default 85000: InfluxDB pauses for some tenths of a
   * second now and then, and at 120,000 points/s a threshold of 50000 shed
   * readings in those pauses with the writer far from full (`npm run bench --
   * ingest`: full storage up to 30,518 msg/s offered instead of 24,414).
   */
  shedQos0AbovePoints?: number
  /**
   * While the point writer holds fewer points than this, a QoS 0 delivery
   * completes at once; from it on, it completes once its points are durable,
   * as QoS 1 does, so that the device's next packets wait in its socket (TCP
   * backpressure) before anything is shed. Default 30000: some three batches
   * behind at 120,000 points/s.
   */
  backpressureQos0AbovePoints?: number
  /**
   * Likewise while this many messages wait in the broker for delivery (they
   * wait there when InfluxDB is the bottleneck, since deliveries complete only
   * once durable). Default 20000.
   */
  shedQos0AboveQueuedMessages?: number
  /**
   * Readings stamped further ahead of the hub's clock than this are refused
   * and dead-lettered with the reason: a device clock running ahead would
   * otherwise hold the latest state until real time caught up. Within it, the
   * latest state follows arrival order (see `StateStore.applyReadings`).
   * Default 300000 (5 min).
   */
  maxClockAheadMs?: number
  /**
   * Readings older than this are refused and dead-lettered with the reason.
   * InfluxDB opens a shard group for each 7 days (its default shard duration)
   * that readings fall in, and keeps each open: one device sending a reading a
   * week back to 2000 made it open 1,405 shards. Default 1814400000 (21 days,
   * three shard groups): a device back from weeks offline still delivers what
   * it kept.
   */
  maxReadingAgeMs?: number
  /** Called with the readings of devices that confirm commands by reporting their state (`ack.report`), once applied. */
  onReport?: (deviceId: string, readings: readonly Reading[]) => void
  /** Called with each ack (the commands module listens). */
  /** `remote`: another node of the cluster received it (see `DevicePacket.remote`). */
  onAck?: (deviceId: string, payload: Buffer, remote: boolean) => void
  /**
   * Called with a device's new readings once its state holds them (the
   * automations' rule index listens). Runs on the hot path: return at once
   * when nothing watches the device.
   */
  onReadings?: (deviceId: string, readings: readonly Reading[]) => void
  /** Called with each valid device event. */
  onEvent?: (deviceId: string, event: DeviceEvent) => void
}

/**
 * Attaches ingest to the device bus. For QoS 1 telemetry the bus holds the
 * acknowledgement until `done` is called, and `done` is called only once the
 * readings are durable: at-least-once with natural backpressure.
 */
export async function attachIngest (opts: IngestOptions): Promise<{ detach (): Promise<void> }> {
  const { bus, directory, state, writer, deadLetters, metrics, log } = opts
  const maxPayloadBytes = opts.maxPayloadBytes ?? 16_384
  const shedQos0Above = opts.shedQos0AbovePoints ?? 85_000
  const backpressureQos0Above = opts.backpressureQos0AbovePoints ?? 30_000
  const shedQos0AboveQueued = opts.shedQos0AboveQueuedMessages ?? 20_000
  const maxAheadMs = opts.maxClockAheadMs ?? 300_000
  const maxAgeMs = opts.maxReadingAgeMs ?? 21 * 86_400_000
  const overloaded = () => writer.stats.buffered >= shedQos0Above || bus.backlog >= shedQos0AboveQueued
  // The writer's timer batches sparse traffic; under load, waiting for it would stall
  // every QoS 1 device whose delivery awaits durability. Once a burst of reads has been
  // handled (setImmediate runs after the poll phase), send what is batched if a
  // request slot is free: while both slots are busy, batches grow by themselves.
  let flushScheduled = false
  const flushAfterBurst = () => {
    flushScheduled = false
    writer.flush()
  }

  const shedCounter = metrics.rejected.labels('overload-shed')

  const reject = (ctx: DeviceContext | null, deviceId: string, topic: string, payload: Buffer, reason: string, category: string) => {
    metrics.rejected.labels(category).inc()
    metrics.deadLetters.inc()
    deadLetters.record({ deviceId, modelId: ctx?.model.id ?? null, makerId: ctx?.makerId ?? null, topic, reason }, payload)
    log.debug({ deviceId, topic, reason }, 'payload rejected')
  }

  type Handler = (ctx: DeviceContext, packet: DevicePacket, done: (err?: Error) => void) => void

  /**
   * Resolves the device of a message; the broker authenticated it, so a miss
   * means it was deleted.
   */
  const withDevice = (channel: OutboundChannel, handle: Handler): DeliveryHandler => (deviceId, packet, brokerDone) => {
    // aedes parses a client's next packets inside `done`: completing synchronously,
    // message after message (rejections, a full writer), recurses until the stack
    // overflows, so a synchronous completion waits for the next turn of the loop.
    // (An unnamed function: a named closure per message also cost a `name` property under tsx.)
    let synchronous = true
    deliver(channel, handle, packet, function (err?: Error) { if (synchronous) completeNextTurn(brokerDone, err); else brokerDone(err) }, deviceId)
    synchronous = false
  }

  // Most QoS 0 messages complete synchronously: their completions wait for the next
  // turn together, one setImmediate for them all rather than one per message.
  let nextTurn: Array<(err?: Error) => void> = []
  let nextTurnErrors: Array<Error | undefined> = []
  const completeNextTurn = (brokerDone: (err?: Error) => void, err: Error | undefined) => {
    if (nextTurn.length === 0) setImmediate(completeTurn)
    nextTurn.push(brokerDone)
    nextTurnErrors.push(err)
  }
  const completeTurn = () => {
    // Completions that these make synchronously wait for the turn after, as they did one by one.
    const dones = nextTurn
    const errs = nextTurnErrors
    nextTurn = []
    nextTurnErrors = []
    for (let i = 0; i < dones.length; i++) dones[i](errs[i])
  }

  const deliver = (channel: OutboundChannel, handle: Handler, packet: DevicePacket, done: (err?: Error) => void, deviceId: string) => {
    metrics.tally[channel]++
    const ctx = directory.peek(deviceId)
    if (ctx) return handle(ctx, packet, done)
    directory.get(deviceId).then((loaded) => {
      if (!loaded) {
        reject(null, deviceId, packet.topic, packet.payload, `unknown device ${deviceId}`, 'unknown-device')
        return done()
      }
      handle(loaded, packet, done)
    }, (err: Error) => {
      // Not acknowledged: the registry may answer when the device sends it again.
      log.error({ err, deviceId }, 'device lookup failed')
      done(err)
    })
  }

  const onTelemetry = withDevice('telemetry', (ctx, packet, done) => {
    if (packet.qos === 0 && overloaded()) {
      shedCounter.inc()
      return done()
    }
    const payload = packet.payload
    if (payload.length > maxPayloadBytes) {
      reject(ctx, ctx.id, packet.topic, payload, `payload of ${payload.length} bytes is over the ${maxPayloadBytes}-byte limit`, 'oversized')
      return done()
    }
    const now = Date.now()
    const gateway = ctx.model.mapping?.gateway
    if (gateway) return onGatewayMessage(ctx, packet, gateway, now, done)
    // A topic outside devices/ is one of the device's own (its mapping's tree; the broker let no other through).
    const result = hasChannel(packet.topic, 'telemetry')
      ? normalizeTelemetry(payload, ctx.model, now, ctx.timeZone)
      : ctx.model.mapping?.topics?.decode(ctx.id, packet.topic, payload, now, ctx.timeZone) ?? { ok: false as const, reason: `topic ${packet.topic} is not in the mapping of model ${ctx.model.name}` }
    accept(ctx, packet.qos, packet.topic, payload, result, now, done)
  })

  /** Stores a device's decoded readings (or dead-letters why not); `done` once durable, or at once for QoS 0 while the writer keeps up. */
  const accept = (ctx: DeviceContext, qos: number, topic: string, payload: Buffer, result: NormalizeResult, now: number, done: (err?: Error) => void) => {
    if (!result.ok) {
      reject(ctx, ctx.id, topic, payload, result.reason, 'malformed')
      state.touch(ctx.id, now)
      return done()
    }
    const { ts, readings, problems } = result.value
    if (ts > now + maxAheadMs || ts < now - maxAgeMs) {
      reject(ctx, ctx.id, topic, payload, timeProblem(ts, now, maxAheadMs, maxAgeMs), ts > now ? 'timestamp-ahead' : 'timestamp-too-old')
      state.touch(ctx.id, now)
      return done()
    }
    if (problems.length > 0) reject(ctx, ctx.id, topic, payload, problems.join('; '), 'invalid-reading')
    if (readings.length === 0) {
      state.touch(ctx.id, now)
      return done()
    }
    state.applyReadings(ctx.id, readings, ts, now)
    opts.onReadings?.(ctx.id, readings)
    metrics.tally.readings += readings.length
    if (ctx.model.mapping?.acksByReport === true) opts.onReport?.(ctx.id, readings)
    if (qos === 0 && writer.stats.buffered < backpressureQos0Above) {
      // QoS 0 promises no delivery, so while InfluxDB keeps up nothing waits for these
      // points to be durable: the device's next packets are read at once, not in a burst
      // when InfluxDB answers (which held every socket in the hub for tens of ms), and the
      // points ride the writer's timer in fewer, larger requests.
      if (!writer.writeValues(ctx.series, readings, ts)) shedCounter.inc()
      return done()
    }
    writer.writeValues(ctx.series, readings, ts, (err) => {
      if (!err) return done()
      // Not acknowledged: the broker drops the connection and the device re-sends later.
      log.error({ err: err.message, deviceId: ctx.id }, 'readings could not be made durable')
      done(err)
    })
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushAfterBurst)
    }
  }

  /**
   * A gateway's message: each entry's payload is read by its child's own model
   * and stored as the child's readings. The gateway speaks only for children
   * provisioned under it; an entry naming any other device is refused with the
   * reason in the gateway model's rejections, and the other entries still
   * count. The delivery completes once every child's readings are durable.
   */
  const onGatewayMessage = (ctx: DeviceContext, packet: DevicePacket, read: (payload: Buffer) => GatewayEntries, now: number, done: (err?: Error) => void) => {
    const { topic, payload, qos } = packet
    state.touch(ctx.id, now)
    const split = read(payload)
    if (!split.ok) {
      reject(ctx, ctx.id, topic, payload, split.reason, 'malformed')
      return done()
    }
    let waiting = 1
    let failed: Error | undefined
    const settle = (err?: Error) => {
      if (err) failed ??= err
      if (--waiting === 0) done(failed)
    }
    // The gateway's own values (its signal, its battery), when its mapping reads any.
    if (ctx.model.mapping?.ownReadings === true) {
      const own = normalizeTelemetry(payload, ctx.model, now, ctx.timeZone)
      if (own.ok) {
        waiting++
        accept(ctx, qos, topic, payload, own, now, settle)
      }
    }
    const forChild = (entry: Extract<GatewayEntry, { ok: true }>, child: DeviceContext | null) => {
      if (!child || child.gatewayId !== ctx.id) {
        reject(ctx, ctx.id, topic, entry.payload, `${entry.where}: device ${entry.child} is not provisioned under gateway ${ctx.id}; provision it with POST /v1/devices and "gateway": "${ctx.id}"`, 'not-a-child')
        return settle()
      }
      if (child.disabled) {
        reject(ctx, ctx.id, topic, entry.payload, `${entry.where}: device ${entry.child} is disabled; its readings are refused until it is enabled again`, 'not-a-child')
        return settle()
      }
      const result = normalizeTelemetry(entry.payload, child.model, now, child.timeZone)
      accept(child, qos, topic, entry.payload, result.ok ? result : { ok: false, reason: `${entry.where} from gateway ${ctx.id}: ${result.reason}` }, now, settle)
    }
    const lookUp = (entry: Extract<GatewayEntry, { ok: true }>) => {
      const cached = directory.peek(entry.child)
      if (cached) return forChild(entry, cached)
      directory.get(entry.child).then((child) => forChild(entry, child), (err: Error) => {
        log.error({ err, deviceId: entry.child, gatewayId: ctx.id }, 'child device lookup failed')
        settle(err)
      })
    }
    const entries = (children: ReadonlySet<string>) => {
      for (const entry of split.entries) {
        if (!entry.ok) {
          reject(ctx, ctx.id, topic, payload, entry.reason, 'malformed')
          continue
        }
        waiting++
        // A stranger's id is refused from memory: a gateway cannot make the hub look devices up.
        if (!children.has(entry.child)) forChild(entry, null)
        else lookUp(entry)
      }
      settle()
    }
    const known = directory.knownChildren(ctx.id)
    if (known) return entries(known)
    directory.childrenOf(ctx.id).then(entries, (err: Error) => {
      log.error({ err, gatewayId: ctx.id }, "a gateway's children could not be read")
      settle(err)
    })
  }

  const onPresence = withDevice('presence', (ctx, packet, done) => {
    const parsed = Presence.safeParse(packet.payload.toString('utf8'))
    if (!parsed.success) {
      reject(ctx, ctx.id, packet.topic, packet.payload, 'presence must be "online" or "offline"', 'malformed')
      return done()
    }
    state.setPresence(ctx.id, parsed.data === 'online')
    done()
  })

  const onEvents = withDevice('events', (ctx, packet, done) => {
    const payload = packet.payload
    let event: DeviceEvent
    try {
      event = DeviceEvent.parse(JSON.parse(payload.toString('utf8')))
    } catch (err) {
      reject(ctx, ctx.id, packet.topic, payload, `event is not {"type": string, "data"?: object}: ${(err as Error).message.slice(0, 200)}`, 'malformed')
      return done()
    }
    state.touch(ctx.id)
    opts.onEvent?.(ctx.id, event)
    done()
  })

  const onAcks = withDevice('acks', (ctx, packet, done) => {
    state.touch(ctx.id)
    opts.onAck?.(ctx.id, packet.payload, packet.remote === true)
    done()
  })

  const handlers: Array<[OutboundChannel, DeliveryHandler]> = [['telemetry', onTelemetry], ['presence', onPresence], ['events', onEvents], ['acks', onAcks]]
  for (const [channel, handler] of handlers) bus.onDelivery(channel, handler)

  // A device that vanishes without a will (or whose will was refused) is offline all the same.
  const onDisconnect = (deviceId: string) => {
    if (directory.peek(deviceId)) state.setPresence(deviceId, false)
  }
  // Connected is online, whether or not the device gets to publish its retained `online` before it drops again.
  const onConnect = (deviceId: string) => {
    if (directory.peek(deviceId)) state.setPresence(deviceId, true)
  }
  bus.on('disconnect', onDisconnect)
  bus.on('connect', onConnect)

  return {
    async detach () {
      bus.off('disconnect', onDisconnect)
      bus.off('connect', onConnect)
      for (const [channel] of handlers) bus.onDelivery(channel, null)
    },
  }
}

/** Why a reading's timestamp is outside the window, in words a device maker can act on. */
function timeProblem (ts: number, now: number, maxAheadMs: number, maxAgeMs: number): string {
  const at = new Date(ts).toISOString()
  if (ts > now) return `timestamp ${at} is ${span(ts - now)} ahead of the hub's clock; readings may be at most ${span(maxAheadMs)} ahead: set the device's clock (NTP) or leave ts out`
  return `timestamp ${at} is older than the ${span(maxAgeMs, '-')} horizon; readings older than ${span(maxAgeMs)} are refused`
}

/** `5 minutes`, `21 days` (or `21-day` with `joiner` '-'). */
function span (ms: number, joiner = ' '): string {
  const [unit, size] = ms >= 2 * 86_400_000 ? ['day', 86_400_000] : ms >= 2 * 3_600_000 ? ['hour', 3_600_000] : ms >= 120_000 ? ['minute', 60_000] : ['second', 1000]
  const n = Number((ms / size).toFixed(1))
  return joiner === '-' ? `${n}-${unit}` : `${n} ${unit}${n === 1 ? '' : 's'}`
}
