/**
 * The bench's helper processes, one role each, driven by the parent over IPC
 * (see lib/child.ts): `generator` (simulated devices), `baseline-broker`
 * (bare aedes), `baseline-subscriber` (naive mqtt.js → writePoints),
 * `http-load` (autocannon), `commander` (SDK devices that obey commands, and
 * an owner's app sending them), `hub` (the hub with its broker, in a process
 * of its own, for measures of the whole process such as RSS), `broker` (the
 * broker apart, as `npm run broker` runs it, for a hub in remote mode).
 */
import http from 'node:http'
import net from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { Aedes } from 'aedes'
import { InfluxDB, type IPoint } from 'influx'
import autocannon from 'autocannon'
import { authenticateDevicesOverHttp, createBroker, type Broker } from '@trellis/broker'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { profileByName, type PayloadProfile } from './lib/payloads.js'
import { youngGenerationBytes } from './lib/system.js'
import { startTrellis, type RunningHub } from './lib/stack.js'

type Handler = (args: any) => Promise<unknown> | unknown

// ---------------------------------------------------------------- generator

interface SimDevice {
  id: string
  topic: string
  profile: PayloadProfile
  client: MqttClient | null
  inflight: number
  seq: number
}

const sims: SimDevice[] = []

export interface ConnectArgs {
  url: string
  devices: Array<{ id: string, secret: string, profile: string }>
  /** Loopback source addresses to spread connections over (past the ephemeral-port limit). Default: the OS picks. */
  localAddresses?: string[]
  /** Connection attempts at once. Default 100. */
  concurrency?: number
  /** MQTT keepalive in seconds. Default 60. */
  keepaliveS?: number
  /** Give up connecting after this many ms. Default 120000. */
  timeoutMs?: number
}

async function connectAll (args: ConnectArgs) {
  const started = performance.now()
  const deadline = started + (args.timeoutMs ?? 120_000)
  const { hostname, port } = new URL(args.url)
  let next = 0
  let connected = 0
  let failed = 0
  let firstError: string | null = null
  const worker = async () => {
    while (next < args.devices.length && performance.now() < deadline) {
      const i = next++
      const d = args.devices[i]
      const localAddress = args.localAddresses?.length ? args.localAddresses[i % args.localAddresses.length] : undefined
      const sim: SimDevice = { id: d.id, topic: topics.telemetry(d.id), profile: profileByName(d.profile), client: null, inflight: 0, seq: 0 }
      try {
        sim.client = await new Promise<MqttClient>((resolve, reject) => {
          const client = mqtt.connect({
            host: hostname,
            port: Number(port),
            protocol: 'mqtt',
            clientId: d.id,
            username: d.id,
            password: d.secret,
            keepalive: args.keepaliveS ?? 60,
            reconnectPeriod: 0,
            connectTimeout: 30_000,
            ...(localAddress ? { localAddress } as object : {}),
          })
          client.once('connect', () => { client.removeAllListeners('error'); client.on('error', () => {}); resolve(client) })
          client.once('error', (err) => { client.end(true); reject(err) })
          client.once('close', () => reject(new Error('closed before CONNACK')))
        })
        sims.push(sim)
        connected++
      } catch (err) {
        failed++
        firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: args.concurrency ?? 100 }, worker))
  return { connected, failed, firstError, elapsedMs: performance.now() - started }
}

export interface LoadArgs {
  qos: 0 | 1
  /** `closed`: each device keeps `windowPerDevice` QoS 1 messages in flight. `paced`: `rate` msg/s over the slice. */
  mode: 'closed' | 'paced'
  /** msg/s for `paced`. */
  rate?: number
  /** Messages in flight per device in `closed` mode. Default 1. */
  windowPerDevice?: number
  /** In `paced` QoS 1, a device with this many unacked messages skips its turn. Default 8. */
  maxInflightPerDevice?: number
  /** In `paced` QoS 0, a device whose socket holds this many unsent bytes skips its turn. Default 65536. */
  maxQueuedBytes?: number
  durationMs: number
  /** Device k's n-th message is stamped tsBase + n, so no two points of a device collide. */
  tsBase: number
  /** Slice of the connected devices [from, to). Default all. */
  from?: number
  to?: number
}

/** Ends the running load early (its `load` call then returns its totals). */
let stopLoad = () => {}

async function load (args: LoadArgs) {
  const slice = sims.slice(args.from ?? 0, args.to ?? sims.length).filter((s) => s.client)
  for (const s of slice) s.seq = 0
  const bySim = new Map<string, { sent: number, acked: number, readingsSent: number, readingsAcked: number }>()
  const counter = (s: SimDevice) => {
    let c = bySim.get(s.profile.name)
    if (!c) { c = { sent: 0, acked: 0, readingsSent: 0, readingsAcked: 0 }; bySim.set(s.profile.name, c) }
    return c
  }
  let sent = 0
  let acked = 0
  let readingsSent = 0
  let readingsAcked = 0
  let heldBack = 0
  let lagged = 0
  let errors = 0
  let inflight = 0
  const started = performance.now()
  let deadline = started + args.durationMs
  stopLoad = () => { deadline = performance.now() }
  let allAcked: (() => void) | null = null

  const publish = (s: SimDevice, after?: () => void) => {
    const payload = s.profile.encode(s.seq, args.tsBase + s.seq)
    s.seq++
    sent++
    readingsSent += s.profile.readingsPerMessage
    const c = counter(s)
    c.sent++
    c.readingsSent += s.profile.readingsPerMessage
    if (args.qos === 0) {
      s.client!.publish(s.topic, payload, { qos: 0 })
      return
    }
    s.inflight++
    inflight++
    s.client!.publish(s.topic, payload, { qos: 1 }, (err) => {
      s.inflight--
      inflight--
      if (err) errors++
      else {
        acked++
        readingsAcked += s.profile.readingsPerMessage
        c.acked++
        c.readingsAcked += s.profile.readingsPerMessage
      }
      after?.()
      if (inflight === 0 && allAcked) allAcked()
    })
  }

  if (args.mode === 'closed') {
    const window = args.windowPerDevice ?? 1
    const loop = (s: SimDevice) => () => { if (performance.now() < deadline && s.client!.connected) publish(s, loop(s)) }
    for (const s of slice) for (let w = 0; w < window; w++) publish(s, loop(s))
    await new Promise<void>((resolve) => { allAcked = resolve; if (inflight === 0) resolve() })
  } else {
    const rate = args.rate ?? 1000
    const maxInflight = args.maxInflightPerDevice ?? 8
    const maxQueued = args.maxQueuedBytes ?? 65_536
    let offered = 0
    let cursor = 0
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now()
        const until = Math.min(now, deadline)
        let owed = Math.floor((rate * (until - started)) / 1000) - offered
        // Behind by more than 100 ms of load: the generator itself is the limit; count and skip.
        const cap = Math.max(1, Math.ceil(rate / 10))
        if (owed > cap) { lagged += owed - cap; offered += owed - cap; owed = cap }
        for (; owed > 0; owed--) {
          offered++
          const s = slice[cursor++ % slice.length]
          const busy = args.qos === 1 ? s.inflight >= maxInflight : (s.client as unknown as { stream: { writableLength: number } }).stream.writableLength > maxQueued
          if (busy || !s.client!.connected) { heldBack++; continue }
          publish(s)
        }
        if (now >= deadline) { clearInterval(timer); resolve() }
      }
      const timer = setInterval(tick, 2)
    })
    // QoS 1: wait (bounded) for the last acks so that "acked" is final; a device the
    // hub disconnected keeps its unacknowledged messages (it would re-send them after
    // reconnecting), so there is nothing to wait for on it.
    if (args.qos === 1 && inflight > 0) {
      const waitUntil = performance.now() + 30_000
      await new Promise<void>((resolve) => {
        allAcked = resolve
        const check = () => {
          const waiting = slice.some((s) => s.inflight > 0 && s.client!.connected)
          if (!waiting || performance.now() > waitUntil) return resolve()
          setTimeout(check, 100)
        }
        check()
      })
    }
  }
  return {
    sent, acked, readingsSent, readingsAcked, heldBack, lagged, errors,
    unacked: inflight,
    disconnected: slice.filter((s) => !s.client!.connected).length,
    elapsedMs: performance.now() - started,
    byProfile: Object.fromEntries(bySim),
  }
}

async function disconnectAll () {
  await Promise.all(sims.splice(0).map((s) => new Promise<void>((resolve) => s.client ? s.client.end(true, {}, () => resolve()) : resolve())))
  return { ok: true }
}

// ---------------------------------------------------------------- baseline

let bareBroker: { aedes: Aedes, server: net.Server } | null = null

async function bareListen () {
  const aedes = await Aedes.createBroker()
  const server = net.createServer(aedes.handle as (socket: net.Socket) => void)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  bareBroker = { aedes, server }
  return { port: (server.address() as net.AddressInfo).port }
}

const naive = { received: 0, pointsWritten: 0, failedWrites: 0, client: null as MqttClient | null }

async function naiveStart (args: { mqttUrl: string, influxUrl: string, database: string, qos: 0 | 1, devices: Array<{ id: string, modelId: string, makerId: string, profile: string }>, batchPoints?: number, flushMs?: number }) {
  const { hostname, port } = new URL(args.influxUrl)
  const influx = new InfluxDB({ host: hostname, port: Number(port), database: args.database })
  await influx.createDatabase(args.database)
  const tags = new Map(args.devices.map((d) => [d.id, { model: d.modelId, maker: d.makerId, profile: profileByName(d.profile) }]))
  const batchPoints = args.batchPoints ?? 5000
  let batch: IPoint[] = []
  const flush = () => {
    if (batch.length === 0) return
    const points = batch
    batch = []
    influx.writePoints(points, { precision: 'ms' }).then(() => { naive.pointsWritten += points.length }, () => { naive.failedWrites++ })
  }
  setInterval(flush, args.flushMs ?? 100).unref()
  const client = await mqtt.connectAsync(args.mqttUrl, { clientId: `naive-${process.pid}`, reconnectPeriod: 0 })
  client.on('message', (topic, payload) => {
    naive.received++
    const id = topic.split('/')[1]
    const device = tags.get(id)
    if (!device) return
    try {
      const text = payload.toString()
      const { ts, readings } = device.profile.naiveReadings(text.startsWith('{') ? JSON.parse(text) : text)
      for (const name in readings) {
        batch.push({ measurement: name, tags: { device: id, model: device.model, maker: device.maker }, fields: { value: readings[name] }, timestamp: ts })
      }
      if (batch.length >= batchPoints) flush()
    } catch {}
  })
  await client.subscribeAsync(topics.all('telemetry'), { qos: args.qos })
  naive.client = client
  return { ok: true }
}

// ---------------------------------------------------------------- http load

async function httpLoad (args: { url: string, paths: string[], token: string, connections?: number, durationS?: number }) {
  let i = 0
  const result = await autocannon({
    url: args.url,
    connections: args.connections ?? 50,
    duration: args.durationS ?? 10,
    headers: { authorization: `Bearer ${args.token}` },
    requests: [{ method: 'GET', setupRequest: (req: any) => ({ ...req, path: args.paths[i++ % args.paths.length] }) }],
  })
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }
}

// ---------------------------------------------------------------- commander

const commandDevices: Device[] = []

/** SDK devices that set their target temperature when told, as an appliance would. */
async function commanderConnect (args: { url: string, devices: Array<{ id: string, secret: string }> }) {
  for (const d of args.devices) {
    commandDevices.push(await connectDevice({
      url: args.url,
      deviceId: d.id,
      secret: d.secret,
      handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) },
    }))
  }
  return { connected: commandDevices.length }
}

export interface CommandLevelArgs {
  httpUrl: string
  token: string
  /** Device ids; worker k of `concurrency` commands device k, as an owner's app addresses its devices. */
  ids: string[]
  concurrency: number
  commands: number
  budgetMs: number
}

/** POSTs JSON over a kept-alive connection of `agent`; resolves with the status and the parsed answer. */
function postJson (agent: http.Agent, url: URL, token: string, body: string): Promise<{ status: number, body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent,
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
        } catch (err) {
          reject(err)
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Commands through the owner API, `concurrency` at once, each awaiting the
 * device's ack. node:http with keep-alive rather than fetch: fetch cost this
 * process a millisecond of CPU per command, which the hub then lacked on the
 * shared two cores.
 */
async function commandLevel (args: CommandLevelArgs) {
  const latencies: number[] = []
  const failures: string[] = []
  const agent = new http.Agent({ keepAlive: true, maxSockets: args.concurrency })
  let issued = 0
  const stopAt = performance.now() + args.budgetMs
  const started = performance.now()
  await Promise.all(Array.from({ length: args.concurrency }, async (_, worker) => {
    const url = new URL(`${args.httpUrl}/v1/devices/${args.ids[worker % args.ids.length]}/commands?wait=5s`)
    while (issued < args.commands && performance.now() < stopAt) {
      const value = 15 + (issued++ % 10)
      const sentAt = performance.now()
      try {
        const res = await postJson(agent, url, args.token, JSON.stringify({ set: { targetTemperature: value } }))
        if (res.status === 200 && res.body.status === 'ok') latencies.push(performance.now() - sentAt)
        else failures.push(`${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }))
  agent.destroy()
  return { latencies, failures: failures.length, firstFailure: failures[0] ?? null, seconds: (performance.now() - started) / 1000 }
}

// ---------------------------------------------------------------- hub

let hub: RunningHub | null = null

/** The hub as `npm run hub` runs it (its Node flags come from the parent), on ephemeral 127.0.0.1 ports. */
async function hubStart (args: { influxUrl: string, database: string }) {
  hub = await startTrellis({ influxUrl: args.influxUrl, database: args.database })
  return { httpUrl: hub.httpUrl, mqttUrl: hub.mqttUrl }
}

// ---------------------------------------------------------------- broker apart

let apartBroker: Broker | null = null
let apartAuthUrl = ''

/**
 * The broker alone, as `npm run broker` runs it: devices authenticate through
 * the hub's `/internal/mqtt/auth`, whose URL `broker-auth-url` gives once the
 * hub (which connects to this broker first) listens.
 */
async function brokerStart (args: { username: string, secret: string }) {
  const authenticate = (id: string, secret: string) => authenticateDevicesOverHttp({ url: apartAuthUrl, serviceSecret: args.secret })(id, secret)
  apartBroker = await createBroker({ service: { username: args.username, secret: args.secret }, authenticateDevice: authenticate })
  return { url: `mqtt://127.0.0.1:${(await apartBroker.listen({ port: 0, host: '127.0.0.1' })).port}` }
}

// ---------------------------------------------------------------- dispatch

const handlers: Record<string, Handler> = {
  ping: () => ({ pid: process.pid }),
  gc: () => { (globalThis as { gc?: () => void }).gc?.(); return { rss: process.memoryUsage().rss, young: youngGenerationBytes() } },
  connect: connectAll,
  load,
  'load-stop': () => { stopLoad(); return { ok: true } },
  disconnect: disconnectAll,
  'commander-connect': commanderConnect,
  'command-level': commandLevel,
  'hub-start': hubStart,
  'broker-start': brokerStart,
  'broker-auth-url': (args: { url: string }) => { apartAuthUrl = args.url; return { ok: true } },
  'bare-listen': bareListen,
  'naive-start': naiveStart,
  'naive-stats': () => ({ received: naive.received, pointsWritten: naive.pointsWritten, failedWrites: naive.failedWrites }),
  'http-load': httpLoad,
}

process.on('message', (msg: { id: number, op: string, args: unknown }) => {
  const handler = handlers[msg.op]
  if (!handler) return process.send!({ id: msg.id, ok: false, error: `unknown op ${msg.op}` })
  Promise.resolve().then(() => handler(msg.args)).then(
    (result) => process.send!({ id: msg.id, ok: true, result }),
    (err: Error) => process.send!({ id: msg.id, ok: false, error: err.stack ?? err.message }),
  )
})
process.on('SIGTERM', () => {
  naive.client?.end(true)
  for (const d of commandDevices) d.kill()
  bareBroker?.server.close()
  if (apartBroker) void apartBroker.close().catch(() => {}).finally(() => process.exit(0))
  else if (hub) void hub.close().catch(() => {}).finally(() => process.exit(0))
  else process.exit(0)
})
// The parent's death ends the helper too: never leave load running unattended.
process.on('disconnect', () => process.exit(0))
