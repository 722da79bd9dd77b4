import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Issue #17, finding 1: owner A queues an unlock for an offline lock, releases it, and owner B claims it.
let influx: TestInflux
let stack: TestStack
let api: ApiClient
const devices: Device[] = []

const smartLock = { name: 'lock-1', capabilities: ['lock', 'temperature'] }
const maxPending = 3

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url, commands: { maxPendingPerDevice: maxPending } })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

async function newOwner (): Promise<string> {
  const owner = await api.post('/v1/owners', { email: `owner-${Math.random().toString(36).slice(2)}@example.com`, password: 'correct horse battery' })
  expect(owner.status).toBe(201)
  return owner.body.token
}

/** The device connects, obeys every `lock` command, and records what it was told. */
async function connectLock (d: { id: string, secret: string }, got: boolean[]): Promise<Device> {
  const device = await connectDevice({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, handlers: { lock: (value: boolean) => { got.push(value); return { lock: value } } } })
  devices.push(device)
  return device
}

describe('releasing a device is a clean break', () => {
  it('never delivers a former owner\'s queued command, and shows the next owner none of the former owner\'s commands, desired values or readings', async () => {
    const a = await seedFleet(api, { model: smartLock })
    const [d] = a.devices

    // While A owns it, the lock reports a temperature stamped a minute ahead (within any clock skew allowed).
    const early = await connectLock(d, [])
    await early.report({ temperature: 21.5 }, Date.now() + 60_000)
    await eventually(() => stack.hub.state.get(d.id)?.readings.get('temperature'), (r) => r !== undefined, { what: 'the reading in the latest state' })
    await early.close()
    await eventually(() => stack.hub.state.get(d.id)?.online, (online) => online === false, { what: 'the lock offline' })

    const queuedByA: string[] = []
    for (let i = 0; i < maxPending; i++) {
      const queued = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { lock: false } }, a.ownerToken)
      expect(queued.status).toBe(202)
      queuedByA.push(queued.body.id)
    }
    const released = await api.post(`/v1/devices/${d.id}/release`, {}, a.ownerToken)
    expect(released.status).toBe(200)

    const b = await newOwner()
    const claimed = await api.post('/v1/devices/claim', { claimCode: released.body.claimCode }, b)
    expect(claimed.status).toBe(200)
    expect(claimed.body.state).toEqual({})

    const view = await api.get(`/v1/devices/${d.id}`, b)
    expect(view.body.state).toEqual({})
    expect((await api.get(`/v1/devices/${d.id}/commands`, b)).body.commands).toEqual([])
    expect((await api.get(`/v1/devices/${d.id}/commands/${queuedByA[0]}`, b)).status).toBe(404)

    // A's queue does not count against B's limit.
    const mine = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { lock: true } }, b)
    expect(mine.status).toBe(202)

    const got: boolean[] = []
    await connectLock(d, got)
    const done = await eventually(() => api.get(`/v1/devices/${d.id}/commands/${mine.body.id}`, b), (r) => r.body.status !== 'pending', { what: 'B\'s command answered' })
    expect(done.body.status).toBe('ok')
    // Exactly once: published while aedes still restored the device's persistent session, it came twice.
    expect(got).toEqual([true])
    const listed = await api.get(`/v1/devices/${d.id}/commands`, b)
    expect(listed.body.commands.map((c: { id: string }) => c.id)).toEqual([mine.body.id])
  })

  it('cancels an owner\'s queued commands on release even when the same owner claims the device again', async () => {
    const a = await seedFleet(api, { model: smartLock })
    const [d] = a.devices
    const queued = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { lock: false } }, a.ownerToken)
    expect(queued.status).toBe(202)
    const released = await api.post(`/v1/devices/${d.id}/release`, {}, a.ownerToken)
    expect((await api.post('/v1/devices/claim', { claimCode: released.body.claimCode }, a.ownerToken)).status).toBe(200)
    expect((await api.get(`/v1/devices/${d.id}`, a.ownerToken)).body.state).toEqual({})

    const after = await api.post(`/v1/devices/${d.id}/commands?queue=true&ttl=10m`, { set: { lock: true } }, a.ownerToken)
    const got: boolean[] = []
    await connectLock(d, got)
    await eventually(() => api.get(`/v1/devices/${d.id}/commands/${after.body.id}`, a.ownerToken), (r) => r.body.status === 'ok', { what: 'the command after the re-claim answered' })
    expect(got).toEqual([true])
  })
})
