import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { openSse } from '../support/sse.js'

let influx: TestInflux
let database: TestDatabase
const stacks: TestStack[] = []
const devices: Device[] = []
const thermostat = { name: 'thermo-1', capabilities: ['temperature', 'targetTemperature', 'power'] }

beforeAll(async () => {
  influx = await startTestInflux()
  database = await freshDatabase()
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  for (const s of stacks) await s.close().catch(() => {})
  await influx?.dispose()
  await database?.drop()
})

/** A hub on the registry database shared by every hub of this file, as one after another restart. */
async function startHub (opts: Pick<Parameters<typeof startStack>[0], 'presence' | 'stream' | 'schedules'> = {}) {
  const stack = await startStack({ influxUrl: influx.url, sql: database.open(), ...opts })
  stacks.push(stack)
  return stack
}

async function connectObedient (stack: TestStack, d: { id: string, secret: string }, seen: unknown[] = []): Promise<Device> {
  const device = await connectDevice({
    url: stack.mqttUrl,
    deviceId: d.id,
    secret: d.secret,
    handlers: { power: (value: boolean) => { seen.push(value) }, targetTemperature: (value: number) => { seen.push(value) } },
  })
  devices.push(device)
  await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === true, { what: `${d.id} online` })
  return device
}

describe('after a hub restart', () => {
  it('restores schedules, which fire again, and delivers commands queued before it', async () => {
    const first = await startHub()
    let api = apiClient(first.httpUrl)
    const fleet = await seedFleet(api, { model: thermostat, count: 2 })
    const [plug, away] = fleet.devices
    const schedule = await api.post('/v1/schedules', { deviceId: plug.id, cron: '* * * * * *', command: { set: { power: true } } }, fleet.ownerToken)
    expect(schedule.status).toBe(201)
    const queued = await api.post(`/v1/devices/${away.id}/commands?queue=true`, { set: { targetTemperature: 17 } }, fleet.ownerToken)
    expect(queued.status).toBe(202)
    await first.close()

    const restartedAt = Date.now()
    const second = await startHub({ schedules: { runsKept: 3 } })
    api = apiClient(second.httpUrl)
    const listed = await api.get('/v1/schedules', fleet.ownerToken)
    expect(listed.body.schedules).toMatchObject([{ id: schedule.body.id, deviceId: plug.id, cron: '* * * * * *', paused: false }])
    expect(listed.body.schedules[0].nextRun).not.toBeNull()

    await connectObedient(second, plug)
    const runs = await eventually(() => api.get(`/v1/schedules/${schedule.body.id}/runs`, fleet.ownerToken),
      (r) => r.body.runs?.some((run: { firedAt: string, status: string }) => Date.parse(run.firedAt) >= restartedAt && run.status === 'ok'),
      { what: 'an ok run after the restart' })
    expect(runs.status).toBe(200)
    // A per-second schedule keeps only its newest runs.
    await eventually(() => api.get(`/v1/devices/${plug.id}/commands`, fleet.ownerToken), (r) => r.body.commands.length >= 5, { what: 'five scheduled commands' })
    const kept = await api.get(`/v1/schedules/${schedule.body.id}/runs`, fleet.ownerToken)
    expect(kept.body.runs.length).toBeGreaterThanOrEqual(3)
    expect(kept.body.runs.length).toBeLessThanOrEqual(4)

    const seen: unknown[] = []
    await connectObedient(second, away, seen)
    const delivered = await eventually(() => api.get(`/v1/devices/${away.id}/commands/${queued.body.id}`, fleet.ownerToken), (r) => r.body.status !== 'pending')
    expect(delivered.body).toMatchObject({ status: 'ok', state: { targetTemperature: 17 } })
    expect(seen).toEqual([17])
    expect((await api.delete(`/v1/schedules/${schedule.body.id}`, fleet.ownerToken)).status).toBe(204)
    await second.close()
  })

  it("marks a device offline once it is silent longer than its model's heartbeat allowance, and online when heard again", async () => {
    const stack = await startHub({ presence: { sweepCron: '* * * * * *' } })
    const api = apiClient(stack.httpUrl)
    const fleet = await seedFleet(api, { model: { ...thermostat, heartbeatSeconds: 2 } })
    expect((await api.get(`/v1/models/${fleet.modelId}`, fleet.makerToken)).body.heartbeatSeconds).toBe(2)
    // A model that declares no allowance gets the hub's default (10 minutes): its silent device stays online.
    const patient = await seedFleet(api, { model: { ...thermostat, name: 'patient-thermostat' } })
    const [d] = fleet.devices
    const device = await connectObedient(stack, d)
    const other = await connectObedient(stack, patient.devices[0])
    await device.report({ temperature: 20 })
    await other.report({ temperature: 20 })
    const lastHeard = stack.hub.state.get(d.id)!.lastSeen!

    // Still connected, but silent: keepalive pings are not messages.
    await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === false, { what: 'the sweep to mark it offline', timeoutMs: 10_000 })
    expect(Date.now() - lastHeard).toBeGreaterThan(2000)
    expect((await api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.online).toBe(false)
    expect(stack.hub.state.get(patient.devices[0].id)?.online).toBe(true)

    await device.event('door-open')
    await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === true, { what: 'online again after an event' })
  })

  it('keeps a live stream alive with heartbeats, limits streams per owner, and ends streams cleanly on shutdown', async () => {
    const stack = await startHub({ stream: { heartbeatMs: 100, maxPerOwner: 2 } })
    const api = apiClient(stack.httpUrl)
    const fleet = await seedFleet(api, { model: thermostat })
    const first = await openSse(`${stack.httpUrl}/v1/stream`, fleet.ownerToken)
    const second = await openSse(`${stack.httpUrl}/v1/stream`, fleet.ownerToken)
    try {
      await first.next((e) => e.event === 'ready')
      await eventually(() => first.comments.filter((c) => c.startsWith('heartbeat')).length, (n) => n >= 2, { what: 'two heartbeats' })
      const third = await openSse(`${stack.httpUrl}/v1/stream`, fleet.ownerToken)
      expect(third.status).toBe(429)
      second.close()
      await eventually(() => stack.hub.control.streams.size, (n) => n === 1, { what: 'the closed stream to be dropped' })

      await stack.close()
      await first.ended
      expect(first.events.at(-1)).toMatchObject({ event: 'close', data: { reason: 'the hub is shutting down' } })
    } finally {
      first.close()
      second.close()
    }
  })
})
