import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authenticateDevicesOverHttp, createBroker, type Broker } from '@trellis/broker'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually, nextEvent } from '../support/wait.js'
import { subackCodes } from '../support/mqtt.js'
import { startSlowProxy, type SlowProxy } from '../support/faults.js'

// The broker runs here, in the test process; the hub in a child process of its own, as its service principal.
const service = { username: 'trellis-hub', secret: 'service-secret-for-the-remote-broker-test' }
const deviceSecrets = new Map<string, string>()
/** Where the hub answers now: it moves when the hub restarts. */
let hubUrl = ''

let influx: TestInflux
let dataDir: string
let broker: Broker
let brokerUrl: string
let hub: HubProcess | undefined
let slowInflux: SlowProxy | undefined
const devices: Device[] = []
const clients: MqttClient[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-remote-'))
  broker = await createBroker({
    service,
    // The hub owns the registry: the broker asks it, as an external broker would.
    authenticateDevice: (id, secret) => authenticateDevicesOverHttp({ url: `${hubUrl}/internal/mqtt/auth`, serviceSecret: service.secret })(id, secret),
  })
  const { port } = await broker.listen({ port: 0 })
  brokerUrl = `mqtt://127.0.0.1:${port}`
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await hub?.kill('SIGKILL')
  await broker?.close()
  await slowInflux?.close()
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

async function remoteHub (influxUrl = influx.url): Promise<HubProcess> {
  const started = await startHubProcess({ influxUrl, dataDir, remoteBroker: { url: brokerUrl, ...service } })
  hubUrl = started.httpUrl
  return started
}

const stored = async (makerId: string) =>
  ((await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${makerId}'`))[0]?.count as number | undefined) ?? 0

async function connect (options: mqtt.IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(brokerUrl, { reconnectPeriod: 0, protocolVersion: 4, ...options })
  clients.push(client)
  return client
}

/**
 * A broker and a hub of their own, with one claimed device provisioned, for a
 * test that stops the broker for good or restarts it on the same port (empty,
 * as a restarted `npm run broker` is).
 */
async function brokerAndHubOfTheirOwn (name: string) {
  let ownHubUrl = ''
  const startBroker = async (port: number) => {
    const broker = await createBroker({ service, authenticateDevice: (id, secret) => authenticateDevicesOverHttp({ url: `${ownHubUrl}/internal/mqtt/auth`, serviceSecret: service.secret })(id, secret) })
    return { broker, port: (await broker.listen({ port })).port }
  }
  let { broker, port } = await startBroker(0)
  let brokerUp = true
  const url = `mqtt://127.0.0.1:${port}`
  const dir = await mkdtemp(path.join(tmpdir(), `trellis-remote-${name}-`))
  const hub = await startHubProcess({ influxUrl: influx.url, dataDir: dir, remoteBroker: { url, ...service } })
  ownHubUrl = hub.httpUrl
  const api = apiClient(hub.httpUrl)
  const fleet = await seedFleet(api, { count: 1 })
  return {
    url,
    hub,
    api,
    fleet,
    device: fleet.devices[0],
    async stopBroker () {
      await broker.close()
      brokerUp = false
    },
    async restartBroker () {
      await broker.close()
      ;({ broker } = await startBroker(port))
    },
    async dispose () {
      await hub.kill('SIGKILL')
      if (brokerUp) await broker.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

describe('the hub runs apart from the broker, on a persistent QoS 1 session', () => {
  it('stores every reading exactly once through a SIGKILL of the hub mid-ingest and a restart on the same session', async () => {
    // Writes answered 400 ms late: at any moment the hub holds readings not yet sent to InfluxDB,
    // unacknowledged to the broker, for the kill to catch (a hub that acknowledged on receipt loses them).
    slowInflux = await startSlowProxy(influx.url, 400)
    hub = await remoteHub(slowInflux.url)
    expect(hub.mqttUrl).toBe(brokerUrl)
    const fleet = await seedFleet(apiClient(hub.httpUrl), { count: 6 })
    for (const d of fleet.devices) deviceSecrets.set(d.id, d.secret)
    for (const d of fleet.devices) {
      devices.push(await connectDevice({ url: brokerUrl, deviceId: d.id, secret: d.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 }))
    }
    const perDevice = 400
    const total = fleet.devices.length * perDevice
    const base = Date.now() - 3_600_000
    let acknowledged = 0
    let hubDown = false
    let acknowledgedWhileHubDown = 0
    // Steady: one report per device every 10 ms, each with its own timestamp.
    const reporting = Promise.all(devices.slice(-fleet.devices.length).map(async (device) => {
      const reports: Array<Promise<void>> = []
      for (let i = 0; i < perDevice; i++) {
        reports.push(device.report({ temperature: i % 100 }, base + i * 1000).then(() => {
          acknowledged++
          if (hubDown) acknowledgedWhileHubDown++
        }))
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await Promise.all(reports)
    }))

    await eventually(() => stored(fleet.makerId), (n) => n > 0 && acknowledged < total * 0.8, { what: 'the first readings stored, with more to come', timeoutMs: 15_000 })
    hubDown = true
    expect(await hub.kill('SIGKILL')).toBe('SIGKILL')
    const storedAtKill = await stored(fleet.makerId)
    expect(storedAtKill).toBeLessThan(total)
    // The devices go on, acknowledged by the broker, which keeps their readings in the hub's session.
    await eventually(() => acknowledgedWhileHubDown, (n) => n >= 100, { what: 'readings acknowledged while no hub runs' })

    hubDown = false
    hub = await remoteHub()
    await reporting
    await eventually(() => stored(fleet.makerId), (n) => n === total, { what: `all ${total} readings stored`, timeoutMs: 30_000 })
    // Exactly once per reading: one point per device and timestamp, none missing, none extra.
    const perDeviceRows = await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}' GROUP BY "device"`)
    expect(perDeviceRows.map((r) => r.count)).toEqual(fleet.devices.map(() => perDevice))
  }, 60_000)

  it('leaves its session on SIGTERM, and the next hub gets what was sent meanwhile', async () => {
    const fleet = await seedFleet(apiClient(hub!.httpUrl), { count: 2 })
    for (const d of fleet.devices) deviceSecrets.set(d.id, d.secret)
    const local = await Promise.all(fleet.devices.map((d) => connectDevice({ url: brokerUrl, deviceId: d.id, secret: d.secret })))
    devices.push(...local)
    const base = Date.now() - 1_800_000
    await Promise.all(local.flatMap((device) => Array.from({ length: 100 }, (_, i) => device.report({ temperature: i % 100 }, base + i * 1000))))
    expect(await hub!.kill('SIGTERM')).toBe(0)
    // Acknowledged by the broker with no hub running: kept in the hub's session.
    await Promise.all(local.flatMap((device) => Array.from({ length: 100 }, (_, i) => device.report({ temperature: i % 100 }, base + (100 + i) * 1000))))
    hub = await remoteHub()
    await eventually(() => stored(fleet.makerId), (n) => n === 400, { what: 'all 400 readings stored', timeoutMs: 20_000 })
  })

  it('publishes commands through the session, and takes the acks back', async () => {
    const api = apiClient(hub!.httpUrl)
    const fleet = await seedFleet(api, { count: 1 })
    const [d] = fleet.devices
    deviceSecrets.set(d.id, d.secret)
    const got: number[] = []
    devices.push(await connectDevice({ url: brokerUrl, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: (value: number) => { got.push(value); return { targetTemperature: value } } } }))
    await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.online === true, { what: 'the device online at the hub' })
    const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 21 } }, fleet.ownerToken)
    expect(sent.status).toBe(200)
    expect(sent.body).toMatchObject({ device: d.id, status: 'ok', set: { targetTemperature: 21 } })
    expect(got).toEqual([21])
  })

  it('answers a command in a few milliseconds: the session does not wait on Nagle and delayed ACKs', async () => {
    const api = apiClient(hub!.httpUrl)
    const fleet = await seedFleet(api, { count: 1 })
    const [d] = fleet.devices
    devices.push(await connectDevice({ url: brokerUrl, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: (value: number) => ({ targetTemperature: value }) } }))
    await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.online === true, { what: 'the device online at the hub' })
    // One at a time, as an owner's app taps: with Nagle on the hub's socket, each
    // command's publish or ack waits for the broker's delayed ACK, 40 ms or more
    // (Linux's least); without it a command takes a few ms, more on a busy machine.
    const roundTrips: number[] = []
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now()
      const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 16 + i } }, fleet.ownerToken)
      roundTrips.push(performance.now() - t0)
      expect(sent.body).toMatchObject({ status: 'ok' })
    }
    roundTrips.sort((a, b) => a - b)
    expect(roundTrips[7], `median of ${roundTrips.map((ms) => ms.toFixed(1)).join(', ')} ms`).toBeLessThan(35)
  })

  it('answers the broker\'s device authentication only to the service secret', async () => {
    const [[id, secret]] = [...deviceSecrets.entries()]
    const ask = (bearer: string | null, body: object) => fetch(`${hubUrl}/internal/mqtt/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: await r.json() as Record<string, any> }))
    expect(await ask(service.secret, { clientId: id, username: id, password: secret })).toEqual({ status: 200, body: { result: 'allow' } })
    expect(await ask(service.secret, { clientId: id, username: id, password: 'wrong' })).toEqual({ status: 200, body: { result: 'deny' } })
    expect(await ask(service.secret, { clientId: 'someone-else', username: id, password: secret })).toEqual({ status: 200, body: { result: 'deny' } })
    const wrongCaller = await ask('not-the-service-secret', { clientId: id, username: id, password: secret })
    expect(wrongCaller.status).toBe(401)
    expect(wrongCaller.body.error.code).toBe('UNAUTHORIZED')
    expect((await ask(null, { clientId: id, username: id, password: secret })).status).toBe(401)
    expect(await ask(service.secret, { clientId: id })).toMatchObject({ status: 400, body: { error: { code: 'INVALID_BODY' } } })
  })

  it('lets only the service credentials subscribe to every device\'s telemetry', async () => {
    const second = await connect({ clientId: 'trellis-hub-2', username: service.username, password: service.secret })
    expect(await subackCodes(second, [topics.all('telemetry'), topics.all('events'), topics.all('presence'), topics.all('acks')])).toEqual([1, 1, 1, 1])

    const [d] = [...deviceSecrets.entries()]
    const device = await connect({ clientId: d[0], username: d[0], password: d[1] })
    expect(await subackCodes(device, [topics.all('telemetry')])).toEqual([128])

    await expect(mqtt.connectAsync(brokerUrl, { clientId: 'trellis-hub-3', username: service.username, password: 'not-the-secret', reconnectPeriod: 0, protocolVersion: 4 }))
      .rejects.toThrow(/not authorized|bad user/i)
  })

  it('loses no acknowledged reading when the broker restarts and devices are back before the hub\'s session', async () => {
    // Restarted on the same port with nothing of its sessions: the hub's subscriptions are gone
    // until it reconnects (1 s), and a device with a 100 ms backoff is back first.
    const own = await brokerAndHubOfTheirOwn('restart')
    try {
      const device = await connectDevice({ url: own.url, deviceId: own.device.id, secret: own.device.secret, reconnectDelayMs: 100, maxReconnectDelayMs: 1000 })
      devices.push(device)
      await eventually(() => own.api.get(`/v1/devices/${own.device.id}`, own.fleet.ownerToken), (r) => r.body.online === true, { what: 'the device online at the hub' })

      const back = nextEvent(device, 'connect', () => true, 20_000)
      await own.restartBroker()
      await back
      const base = Date.now() - 600_000
      // Acknowledged by the broker: each must reach the hub, however early it was sent.
      await Promise.all(Array.from({ length: 10 }, (_, i) => device.report({ temperature: 20 + i }, base + i * 1000)))
      await eventually(() => stored(own.fleet.makerId), (n) => n === 10, { what: 'all 10 readings stored', timeoutMs: 20_000 })
    } finally {
      await own.dispose()
    }
  })

  it('stops on SIGTERM within seconds when the broker is gone with a command in flight', async () => {
    const own = await brokerAndHubOfTheirOwn('gone')
    try {
      const { device: d, api, fleet } = own
      devices.push(await connectDevice({ url: own.url, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: () => {} } }))
      await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.online === true, { what: 'the device online at the hub' })
      await own.stopBroker()
      // The device's last presence said online: the hub publishes the command into a session that has no broker.
      const sent = await api.post(`/v1/devices/${d.id}/commands?wait=0`, { set: { targetTemperature: 21 } }, fleet.ownerToken)
      expect(sent).toMatchObject({ status: 202, body: { status: 'pending', sentAt: expect.any(String) } })
      const started = Date.now()
      expect(await own.hub.kill('SIGTERM')).toBe(0)
      expect(Date.now() - started).toBeLessThan(8_000)
    } finally {
      await own.dispose()
    }
  })
})
