import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import type { AedesPublishPacket } from 'aedes'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { openSse, type SseStream } from '../support/sse.js'
import { canonicalSimulators, seededRng, type RunningDevice } from '@trellis/simulators'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
const devices: Device[] = []
const streams: SseStream[] = []
const simulated: RunningDevice[] = []

const thermostat = { name: 'thermo-1', capabilities: ['temperature', 'targetTemperature', 'power', 'humidity', { name: 'mode', enum: ['eco', 'comfort'] }] }

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url, commands: { maxPendingPerDevice: 3 } })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  for (const s of streams) s.close()
  await Promise.all(simulated.map((d) => d.stop().catch(() => {})))
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

/** An SDK thermostat that obeys: it reports the setpoint it was given. */
async function connectThermostat (d: { id: string, secret: string }): Promise<Device> {
  const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, capabilities: thermostat.capabilities as never })
  devices.push(device)
  device.onCommand('targetTemperature', (value: number) => ({ targetTemperature: value }))
  device.onCommand('power', () => {})
  device.onCommand('mode', () => {})
  device.onCommand('identify', () => {})
  await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === true, { what: `${d.id} online at the hub` })
  return device
}

/** Every command the broker delivers, observed in-process. */
function observeCommands (): { seen: Array<{ deviceId: string, body: any }>, stop (): void } {
  const seen: Array<{ deviceId: string, body: any }> = []
  const deliver = (packet: AedesPublishPacket, done: () => void) => {
    seen.push({ deviceId: packet.topic.split('/')[1], body: JSON.parse(packet.payload.toString()) })
    done()
  }
  stack.hub.broker.aedes.subscribe(topics.all('commands'), deliver as never, () => {})
  return { seen, stop: () => stack.hub.broker.aedes.unsubscribe(topics.all('commands'), deliver as never, () => {}) }
}

/** A device of raw MQTT that acks only when the test says: subscribed to its commands and online at the hub. */
async function rawDevice (d: { id: string, secret: string }): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
  await client.subscribeAsync(topics.commands(d.id), { qos: 1 })
  await client.publishAsync(topics.presence(d.id), 'online', { qos: 1, retain: true })
  await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === true)
  return client
}

/** The next command a raw device receives. */
function nextCommand (client: mqtt.MqttClient): Promise<any> {
  return new Promise<any>((resolve) => client.once('message', (_t, payload) => resolve(JSON.parse(payload.toString()))))
}

/** A fresh owner's fleet with the owner's event stream open and ready. */
async function fleetWatched (): Promise<{ fleet: Awaited<ReturnType<typeof seedFleet>>, stream: SseStream }> {
  const fleet = await seedFleet(api, { model: thermostat })
  const stream = await openSse(`${stack.httpUrl}/v1/stream`, fleet.ownerToken)
  streams.push(stream)
  await stream.next((e) => e.event === 'ready')
  return { fleet, stream }
}

describe('an owner commands a device', () => {
  it('sets a value on an SDK device and gets ok with the new reported state', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    await connectThermostat(d)

    const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 21 } }, fleet.ownerToken)
    expect(sent.status).toBe(200)
    expect(sent.body).toMatchObject({ device: d.id, status: 'ok', set: { targetTemperature: 21 }, state: { targetTemperature: 21 }, origin: 'api' })
    expect(Date.parse(sent.body.ackedAt)).toBeGreaterThanOrEqual(Date.parse(sent.body.sentAt))
    expect(sent.headers.get('location')).toBe(`/v1/devices/${d.id}/commands/${sent.body.id}`)

    // The ack's state is the reported state at once, with nothing left pending.
    const view = await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)
    expect(view.body.state.targetTemperature).toEqual({ value: 21, ts: sent.body.ackedAt })

    const one = await api.get(`/v1/devices/${d.id}/commands/${sent.body.id}`, fleet.ownerToken)
    expect(one.status).toBe(200)
    expect(one.body).toEqual(sent.body)

    const action = await api.post(`/v1/devices/${d.id}/commands`, { action: 'identify', params: { seconds: 5 } }, fleet.ownerToken)
    expect(action.body).toMatchObject({ status: 'ok', action: 'identify', params: { seconds: 5 } })
    const list = await api.get(`/v1/devices/${d.id}/commands`, fleet.ownerToken)
    expect(list.body.commands.map((c: { id: string }) => c.id)).toEqual([action.body.id, sent.body.id])

    const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "targetTemperature" WHERE "device" = '${d.id}'`), (r) => r.length === 1)
    expect(rows[0].value).toBe(21)
  })

  it('answers timeout (504) when the device never acks, and still takes a late ack', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    const silent = await rawDevice(d)
    try {
      const received = nextCommand(silent)

      const started = Date.now()
      const sent = await api.post(`/v1/devices/${d.id}/commands?wait=300ms`, { set: { power: true } }, fleet.ownerToken)
      expect(sent.status).toBe(504)
      expect(sent.body).toMatchObject({ status: 'timeout', error: `no ack from device ${d.id} within 300 ms` })
      expect(sent.body.ackedAt).toBeUndefined()
      expect(Date.now() - started).toBeGreaterThanOrEqual(300)

      const command = await received
      expect(command).toEqual({ id: sent.body.id, set: { power: true } })
      await silent.publishAsync(topics.acks(d.id), JSON.stringify({ id: command.id, status: 'ok', state: { power: true } }), { qos: 1 })
      const late = await eventually(() => api.get(`/v1/devices/${d.id}/commands/${sent.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'timeout')
      expect(late.body).toMatchObject({ status: 'ok', state: { power: true } })
      // A QoS 1 duplicate of the ack changes nothing and is not a rejection (its PUBACK follows its handling).
      await silent.publishAsync(topics.acks(d.id), JSON.stringify({ id: command.id, status: 'error', error: 'dup' }), { qos: 1 })
      expect(stack.hub.deadLetters.forModel(fleet.modelId)).toEqual([])
      expect((await api.get(`/v1/devices/${d.id}/commands/${sent.body.id}`, fleet.ownerToken)).body.status).toBe('ok')

      // wait=0 answers at once with 202 pending.
      const quick = await api.post(`/v1/devices/${d.id}/commands?wait=0`, { set: { mode: 'eco' } }, fleet.ownerToken)
      expect(quick.status).toBe(202)
      expect(quick.body.status).toBe('pending')
      const view = await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)
      expect(view.body.state.mode).toEqual({ value: null, ts: null, desired: { value: 'eco', command: quick.body.id, since: quick.body.createdAt } })

      // Unanswered commands pile up to a limit (3 here), then the device is busy.
      for (let i = 0; i < 2; i++) expect((await api.post(`/v1/devices/${d.id}/commands?wait=0`, { set: { power: false } }, fleet.ownerToken)).status).toBe(202)
      const busy = await api.post(`/v1/devices/${d.id}/commands?wait=0`, { set: { power: false } }, fleet.ownerToken)
      expect(busy.status).toBe(429)
      expect(busy.body.error).toEqual({ code: 'DEVICE_BUSY', message: `device ${d.id} has 3 commands pending, the limit; wait for their acks` })
    } finally {
      await silent.endAsync(true)
    }
  })

  it('has the broker read devices in slices while a command awaits its ack, and not for an open event stream', async () => {
    const { fleet } = await fleetWatched()
    const [d] = fleet.devices
    // A stream is not an answer awaited: it would keep the slices on for as long as an owner's console is open.
    expect(stack.hub.broker.stats.answersAwaited).toBe(0)
    const slow = await rawDevice(d)
    try {
      const received = nextCommand(slow)
      const sent = api.post(`/v1/devices/${d.id}/commands?wait=5s`, { set: { power: true } }, fleet.ownerToken)
      const command = await received
      expect(stack.hub.broker.stats.answersAwaited).toBe(1)
      await slow.publishAsync(topics.acks(d.id), JSON.stringify({ id: command.id, status: 'ok' }), { qos: 1 })
      expect((await sent).status).toBe(200)
      await eventually(() => stack.hub.broker.stats.answersAwaited, (n) => n === 0, { what: 'the answered request released' })
    } finally {
      await slow.endAsync(true)
    }
  })

  it('refuses an invalid command with 422 naming the problem, and publishes nothing', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    await connectThermostat(d)
    const observed = observeCommands()
    try {
      const refuse = async (body: unknown, message: string) => {
        const res = await api.post(`/v1/devices/${d.id}/commands`, body, fleet.ownerToken)
        expect(res.status, JSON.stringify(res.body)).toBe(422)
        expect(res.body.error).toEqual({ code: 'INVALID_COMMAND', message })
      }
      await refuse({ set: { targetTemperature: 412 } }, 'targetTemperature 412 is out of range -30..100 for model thermo-1')
      await refuse({ set: { temperature: 30 } }, 'temperature is read-only; settable on model thermo-1: targetTemperature, power, mode')
      await refuse({ set: { mode: 'turbo' } }, 'mode "turbo" is not one of eco, comfort for model thermo-1')
      await refuse({ set: { power: 'on' } }, 'power must be true or false, got "on"')
      await refuse({ set: { brightness: 50 } }, 'model thermo-1 has no capability brightness; settable: targetTemperature, power, mode')
      await refuse({ action: 'selfDestruct' }, 'model thermo-1 has no action selfDestruct; its actions: identify, reboot, toggle')
      await refuse({ action: 'identify', params: { seconds: 600 } }, 'action identify: params.seconds: Too big: expected number to be <=60')
      const malformed = await api.post(`/v1/devices/${d.id}/commands`, { set: {}, action: 'reboot' }, fleet.ownerToken)
      expect(malformed.status).toBe(400)
      expect(malformed.body.error.code).toBe('INVALID_BODY')
      expect((await api.post(`/v1/devices/${d.id}/commands?wait=1h`, { set: { power: true } }, fleet.ownerToken)).status).toBe(400)

      // The broker delivers in order: the first command it saw is this valid one.
      const valid = await api.post(`/v1/devices/${d.id}/commands`, { set: { power: false } }, fleet.ownerToken)
      expect(valid.body.status).toBe('ok')
      expect(observed.seen).toEqual([{ deviceId: d.id, body: { id: valid.body.id, set: { power: false } } }])
    } finally {
      observed.stop()
    }
  })

  it("answers 404 for another owner's device and its commands", async () => {
    const mine = await seedFleet(api, { model: thermostat })
    const theirs = await seedFleet(api, { model: thermostat, makerName: 'Other Maker' })
    const [d] = theirs.devices
    await connectThermostat(d)
    const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { power: true } }, theirs.ownerToken)
    expect(sent.body.status).toBe('ok')

    const attempt = await api.post(`/v1/devices/${d.id}/commands`, { set: { power: false } }, mine.ownerToken)
    expect(attempt.status).toBe(404)
    expect(attempt.body.error.code).toBe('NOT_FOUND')
    expect((await api.get(`/v1/devices/${d.id}/commands/${sent.body.id}`, mine.ownerToken)).status).toBe(404)
    expect((await api.get(`/v1/devices/${d.id}/commands`, mine.ownerToken)).status).toBe(404)
    // A command id of another device is not reachable through one's own device either.
    expect((await api.get(`/v1/devices/${mine.devices[0].id}/commands/${sent.body.id}`, mine.ownerToken)).status).toBe(404)
    expect((await api.post(`/v1/devices/${d.id}/commands`, { set: { power: false } }, theirs.makerToken)).status).toBe(403)
  })

  it('answers 409 for an offline device, and with queue=true delivers the command when it comes back', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    const offline = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 19 } }, fleet.ownerToken)
    expect(offline.status).toBe(409)
    expect(offline.body.error).toEqual({ code: 'DEVICE_OFFLINE', message: `device ${d.id} is offline; add ?queue=true to deliver the command when it comes back` })

    const queued = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { targetTemperature: 19 } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    expect(queued.body).toMatchObject({ status: 'pending', sentAt: null })
    expect(Date.parse(queued.body.queuedUntil) - Date.parse(queued.body.createdAt)).toBe(600_000)
    const pendingView = await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)
    expect(pendingView.body.state.targetTemperature.desired).toEqual({ value: 19, command: queued.body.id, since: queued.body.createdAt })

    const got: unknown[] = []
    // Handlers given at connect exist before the queued command arrives.
    const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, handlers: { targetTemperature: (value: number) => { got.push(value) } } })
    devices.push(device)
    const done = await eventually(() => api.get(`/v1/devices/${d.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending')
    expect(done.body).toMatchObject({ status: 'ok', state: { targetTemperature: 19 } })
    expect(got).toEqual([19])
    const view = await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)
    expect(view.body.state.targetTemperature).toEqual({ value: 19, ts: done.body.ackedAt })
  })

  it('lets a queued command expire when the device stays away past its TTL', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    const queued = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=1s`, { set: { power: true } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    const expired = await eventually(() => api.get(`/v1/devices/${d.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending')
    expect(expired.body.status).toBe('timeout')
    expect(expired.body.error).toContain('did not come back before')
    expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.state.power).toBeUndefined()
  })
})

describe('the SDK validates commands before its handlers run', () => {
  it('acks error for what the device does not declare or allow, and ok for the rest', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    const device = await connectThermostat(d)
    const setpoints: number[] = []
    device.onCommand('targetTemperature', (value: number) => { setpoints.push(value) })
    const acks: any[] = []
    const deliver = (packet: AedesPublishPacket, done: () => void) => { acks.push(JSON.parse(packet.payload.toString())); done() }
    const aedes = stack.hub.broker.aedes
    await new Promise<void>((resolve) => aedes.subscribe(topics.acks(d.id), deliver as never, resolve))
    try {
      // Straight onto the device's topic, past the hub's own validation.
      const raw = (body: object) => new Promise<void>((resolve, reject) => aedes.publish({ cmd: 'publish', topic: topics.commands(d.id), payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: false, dup: false } as never, (err?: Error) => err ? reject(err) : resolve()))
      await raw({ id: 'raw-1', set: { targetTemperature: 412 } })
      await raw({ id: 'raw-2', set: { humidity: 3 } })
      await raw({ id: 'raw-3', set: { brightness: 3 } })
      await raw({ id: 'raw-4', action: 'descale' })
      await raw({ id: 'raw-5', set: { targetTemperature: 22.5, power: true } })
      await raw({ id: 'raw-6', set: { targetTemperature: [21] } })
      await raw({ id: 'raw-7', set: { targetTemperature: 18, humidity: 40 } })
      await eventually(() => acks.length, (n) => n === 7, { what: 'seven acks' })
      expect(acks).toEqual([
        { id: 'raw-1', status: 'error', error: 'targetTemperature 412 is out of range -30..100 for this device' },
        { id: 'raw-2', status: 'error', error: 'humidity cannot be set' },
        { id: 'raw-3', status: 'error', error: 'this device has no capability brightness' },
        { id: 'raw-4', status: 'error', error: 'this device has no action descale' },
        { id: 'raw-5', status: 'ok', state: { targetTemperature: 22.5, power: true } },
        { id: 'raw-6', status: 'error', error: expect.stringMatching(/^malformed command: set\.targetTemperature: /) },
        { id: 'raw-7', status: 'error', error: 'humidity cannot be set' },
      ])
      // raw-7 was refused as a whole: its valid half never reached the handler.
      expect(setpoints).toEqual([22.5])
      // Acks for commands the hub never sent are dead-lettered, not applied.
      expect(stack.hub.state.get(d.id)?.readings.get('targetTemperature')).toBeUndefined()
      expect(stack.hub.deadLetters.forModel(fleet.modelId).map((l) => l.reason)).toContain('ack for command raw-5, which this device has not been sent or which expired')
    } finally {
      await new Promise<void>((resolve) => aedes.unsubscribe(topics.acks(d.id), deliver as never, resolve))
    }
  })
})

describe('owners watch their devices live', () => {
  it("streams state, presence and command changes of the owner's devices and nothing of others'", async () => {
    const mine = await seedFleet(api, { model: thermostat })
    const theirs = await seedFleet(api, { model: thermostat, makerName: 'Other Maker' })
    const stream = await openSse(`${stack.httpUrl}/v1/stream`, mine.ownerToken)
    streams.push(stream)
    expect(stream.status).toBe(200)
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    await stream.next((e) => e.event === 'ready')

    const other = await connectThermostat(theirs.devices[0])
    await other.report({ temperature: 30 })
    await api.post(`/v1/devices/${theirs.devices[0].id}/commands`, { set: { power: true } }, theirs.ownerToken)
    const device = await connectThermostat(mine.devices[0])
    await device.report({ temperature: 20.5 })
    const state = await stream.next((e) => e.event === 'state')
    expect(state.data).toMatchObject({ device: mine.devices[0].id, readings: { temperature: { value: 20.5 } } })
    const sent = await api.post(`/v1/devices/${mine.devices[0].id}/commands`, { set: { targetTemperature: 18 } }, mine.ownerToken)
    const acked = await stream.next((e) => e.event === 'command' && e.data.status === 'ok')
    expect(acked.data).toEqual(sent.body)

    // The other owner's device acted first; none of it reached this stream.
    const devicesSeen = new Set(stream.events.filter((e) => e.data?.device).map((e) => e.data.device))
    expect([...devicesSeen]).toEqual([mine.devices[0].id])
    expect(stream.events.map((e) => e.event)).toEqual(expect.arrayContaining(['ready', 'presence', 'state', 'command']))

    const anonymous = await openSse(`${stack.httpUrl}/v1/stream`, 'trellis_owner_forged')
    expect(anonymous.status).toBe(401)
    const maker = await openSse(`${stack.httpUrl}/v1/stream`, mine.makerToken)
    expect(maker.status).toBe(403)
  })

  it('ends a stream at once when its token is revoked, with a close event, and keeps the streams of the owner\'s other tokens', async () => {
    const email = `revoker-${Math.random().toString(36).slice(2)}@example.com`
    const fleet = await seedFleet(api, { model: thermostat, email })
    const session = await api.post('/v1/sessions', { email, password: 'correct horse battery' })
    expect(session.status).toBe(200)
    const doomed = await openSse(`${stack.httpUrl}/v1/stream`, session.body.token)
    const kept = await openSse(`${stack.httpUrl}/v1/stream`, fleet.ownerToken)
    streams.push(doomed, kept)
    await doomed.next((e) => e.event === 'ready')
    await kept.next((e) => e.event === 'ready')
    // Newest first: the session's token, then the sign-up's.
    const tokens = await api.get('/v1/tokens', fleet.ownerToken)
    expect(tokens.body.tokens).toHaveLength(2)
    expect((await api.delete(`/v1/tokens/${tokens.body.tokens[0].id}`, fleet.ownerToken)).status).toBe(200)

    const closed = await doomed.next((e) => e.event === 'close')
    expect(closed.data.reason).toMatch(/revoked/)
    await doomed.ended
    // The owner's other stream goes on: it still gets the device's news.
    const device = await connectThermostat(fleet.devices[0])
    await device.report({ temperature: 19.5 })
    const state = await kept.next((e) => e.event === 'state')
    expect(state.data.device).toBe(fleet.devices[0].id)
    expect(kept.events.some((e) => e.event === 'close')).toBe(false)
  })

  it('turns a killed device offline through its last will, and stores presence for uptime', async () => {
    const { fleet, stream } = await fleetWatched()
    const [d] = fleet.devices
    const device = await connectThermostat(d)
    device.kill()
    const offline = await stream.next((e) => e.event === 'presence' && e.data.online === false)
    expect(offline.data.device).toBe(d.id)
    expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.online).toBe(false)
    expect((await api.post(`/v1/devices/${d.id}/commands`, { set: { power: true } }, fleet.ownerToken)).status).toBe(409)

    const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "presence" WHERE "device" = '${d.id}'`), (r) => r.length === 2, { what: 'two presence points' })
    expect(rows.map((r) => r.value)).toEqual([true, false])
    const from = new Date(Date.now() - 10_000).toISOString()
    const presence = await api.get(`/v1/devices/${d.id}/presence?from=${from}`, fleet.ownerToken)
    expect(presence.status).toBe(200)
    expect(presence.body.online).toBe(false)
    expect(presence.body.changes.map((c: { online: boolean }) => c.online)).toEqual([true, false])
    expect(presence.body.uptime).toBeGreaterThan(0)
    expect(presence.body.uptime).toBeLessThan(0.5)
  })
})

describe('owners schedule commands', () => {
  it('fires a per-second schedule and records its run with the command status', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    await connectThermostat(d)
    const created = await api.post('/v1/schedules', { deviceId: d.id, cron: '* * * * * *', timezone: 'Europe/Berlin', command: { set: { power: false } } }, fleet.ownerToken)
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ deviceId: d.id, cron: '* * * * * *', timezone: 'Europe/Berlin', paused: false })
    expect(Date.parse(created.body.nextRun)).toBeGreaterThan(Date.now() - 1000)

    const runs = await eventually(() => api.get(`/v1/schedules/${created.body.id}/runs`, fleet.ownerToken),
      (r) => r.body.runs?.some((run: { status: string }) => run.status === 'ok'), { what: 'an ok run' })
    const run = runs.body.runs.find((r: { status: string }) => r.status === 'ok')
    expect(run).toMatchObject({ outcome: 'sent', error: null })
    const command = await api.get(`/v1/devices/${d.id}/commands/${run.commandId}`, fleet.ownerToken)
    expect(command.body).toMatchObject({ origin: 'schedule', status: 'ok', set: { power: false } })

    const paused = await api.call('PATCH', `/v1/schedules/${created.body.id}`, { token: fleet.ownerToken, body: { paused: true } })
    expect(paused.body).toMatchObject({ paused: true, nextRun: null })
    expect((await api.get('/v1/schedules', fleet.ownerToken)).body.schedules.map((s: { id: string }) => s.id)).toEqual([created.body.id])
    expect((await api.delete(`/v1/schedules/${created.body.id}`, fleet.ownerToken)).status).toBe(204)
    expect((await api.get(`/v1/schedules/${created.body.id}`, fleet.ownerToken)).status).toBe(404)
  })

  it('refuses a schedule with a bad cron, zone or command, or for a device not the owner\'s', async () => {
    const fleet = await seedFleet(api, { model: thermostat })
    const theirs = await seedFleet(api, { model: thermostat })
    const [d] = fleet.devices
    const post = (body: object, token = fleet.ownerToken) => api.post('/v1/schedules', { deviceId: d.id, cron: '0 23 * * *', command: { set: { power: false } }, ...body }, token)
    const badCron = await post({ cron: '61 * * * *' })
    expect(badCron.status).toBe(422)
    expect(badCron.body.error.code).toBe('INVALID_SCHEDULE')
    expect(badCron.body.error.message).toContain('cron "61 * * * *" is not valid')
    expect((await post({ timezone: 'Mars/Olympus' })).body.error.message).toBe('time zone "Mars/Olympus" is not an IANA zone such as Europe/Berlin or UTC')
    expect((await post({ command: { set: { targetTemperature: 500 } } })).body.error.message).toBe('targetTemperature 500 is out of range -30..100 for model thermo-1')
    expect((await post({}, theirs.ownerToken)).status).toBe(404)
    const ok = await post({})
    expect(ok.status).toBe(201)
    expect(ok.body.timezone).toBe('UTC')
    expect(ok.body.nextRun).toMatch(/T23:00:00\.000Z$/)
    // 23:00 in Berlin is 22:00 UTC in winter (CET) and 21:00 UTC in summer (CEST).
    const berlin = await post({ timezone: 'Europe/Berlin' })
    const next = new Date(berlin.body.nextRun)
    const offsetHours = new Intl.DateTimeFormat('en', { timeZone: 'Europe/Berlin', timeZoneName: 'shortOffset' }).formatToParts(next).find((p) => p.type === 'timeZoneName')!.value === 'GMT+2' ? 2 : 1
    expect(next.getUTCHours()).toBe(23 - offsetHours)
    expect(next.getUTCMinutes()).toBe(0)
    expect((await api.get(`/v1/schedules/${ok.body.id}`, theirs.ownerToken)).status).toBe(404)
    expect((await api.delete(`/v1/schedules/${ok.body.id}`, theirs.ownerToken)).status).toBe(404)
  })
})

describe('the API documents what it serves', () => {
  it('lists the command, presence, schedule and stream routes in /docs', async () => {
    const docs = await api.get('/docs')
    expect(docs.status).toBe(200)
    const paths = docs.body.paths
    expect(Object.keys(paths)).toEqual(expect.arrayContaining([
      '/v1/devices/{id}/commands', '/v1/devices/{id}/commands/{cid}', '/v1/devices/{id}/presence',
      '/v1/schedules', '/v1/schedules/{id}', '/v1/schedules/{id}/runs', '/v1/stream',
    ]))
    expect(paths['/v1/devices/{id}/commands'].post.parameters.map((p: { name: string }) => p.name)).toEqual(['id', 'wait', 'queue', 'ttl'])
    const metrics = await api.get('/metrics')
    expect(metrics.body).toMatch(/trellis_commands_total\{status="ok"\} [1-9]/)
  })
})

describe('simulated appliances obey commands', () => {
  it('a plug turned off reports 0 W, a thermostat takes its new setpoint', async () => {
    for (const kind of ['plug', 'thermostat']) {
      const simulator = canonicalSimulators.find((s) => s.kind === kind)!
      const fleet = await seedFleet(api, { model: simulator.model as never, makerName: simulator.brand })
      const [d] = fleet.devices
      // A long interval: after the first report, what it reports is what the command caused.
      simulated.push(await simulator.start({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, rng: seededRng(7), intervalMs: 600_000 }))
      await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === true)
      if (kind === 'plug') {
        const off = await api.post(`/v1/devices/${d.id}/commands`, { set: { power: false } }, fleet.ownerToken)
        expect(off.body).toMatchObject({ status: 'ok', state: { power: false, powerDraw: 0, current: 0 } })
        const view = await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => Date.parse(r.body.state.energy?.ts) >= Date.parse(off.body.sentAt), { what: 'the report after the command' })
        expect(view.body.state.powerDraw.value).toBe(0)
        expect(view.body.state.power.value).toBe(false)
      } else {
        const set = await api.post(`/v1/devices/${d.id}/commands`, { set: { targetTemperature: 25 } }, fleet.ownerToken)
        expect(set.body).toMatchObject({ status: 'ok', state: { targetTemperature: 25 } })
        const eco = await api.post(`/v1/devices/${d.id}/commands`, { set: { mode: 'eco' } }, fleet.ownerToken)
        expect(eco.body).toMatchObject({ status: 'ok', state: { mode: 'eco', targetTemperature: 18 } })
        expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.state.targetTemperature.value).toBe(18)
      }
    }
  })
})
