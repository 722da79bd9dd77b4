import { afterAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { catalogue, checkValue, resolveCapabilities, type CapabilityName, type Command, type ReadingValue } from '@trellis/device-sdk'
import { allSimulators, brands, ensureDemoFleet, fleetOf, seededRng, startFleet, type BrandSimulator, type Fleet } from '@trellis/simulators'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { commandThroughApi } from '../support/commands.js'

const simulators: BrandSimulator[] = []
const fleets: Fleet[] = []

const env = useStack()

afterAll(async () => {
  await Promise.all(simulators.map((s) => s.stop().catch(() => {})))
  await Promise.all(fleets.map((f) => f.stop()))
})

/** A command each brand's appliance understands, and the canonical state it leads to. */
const commandFor: Record<string, { set: Command['set'], then: Record<string, ReadingValue> }> = {
  'frostline-f2': { set: { targetTemperature: 3.5 }, then: { targetTemperature: 3.5 } },
  'breezewell-ap3': { set: { power: false }, then: { power: false } },
  'hearthway-t100': { set: { targetTemperature: 22, mode: 'cool' }, then: { targetTemperature: 22, mode: 'cool' } },
  'voltwise-p1': { set: { power: false }, then: { power: false, powerDraw: 0, current: 0 } },
  'sudsmith-w8': { set: { power: false }, then: { power: false, cyclePhase: 'idle', remainingTime: 0 } },
}

/** Numbers as close as float arithmetic allows; everything else exactly. */
const same = (actual: unknown, expected: ReadingValue) => typeof expected === 'number' ? typeof actual === 'number' && Math.abs(actual - expected) < 1e-6 : actual === expected
const hasReadings = (state: Record<string, { value: unknown }> | undefined, expected: Record<string, ReadingValue>) =>
  Object.entries(expected).every(([c, v]) => same(state?.[c]?.value, v))

describe.each(brands.map((b, i) => [b.model.name, b, i] as const))('a simulated %s appliance', (_name, brand, index) => {
  it('reports in its dialect; the hub stores canonical readings in InfluxDB and in its state, and it answers commands in its dialect', async () => {
    const fleet = await seedFleet(env.api, { model: brand.model, makerName: brand.brand })
    const [d] = fleet.devices
    // The simulator reports once on start; with a long interval after that, the test triggers the report it checks.
    const sim = await brand.start({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rng: seededRng(index + 1), intervalMs: 3_600_000 })
    simulators.push(sim)

    const sent = await sim.report()
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken),
      (r) => hasReadings(r.body.state, sent), { what: `the state of ${brand.model.name} to be ${JSON.stringify(sent)}` })
    expect(view.body).toMatchObject({ brand: brand.brand, modelName: brand.model.name, online: true })
    expect(Object.keys(view.body.state).sort()).toEqual(Object.keys(sent).sort())

    for (const [capability, value] of Object.entries(sent)) {
      await eventually(() => influxQuery(env.influx.url, `SELECT last("value") AS "value" FROM "${capability}" WHERE "device" = '${d.id}'`),
        (r) => r.length === 1 && same(r[0].value, value), { what: `${capability} ${String(value)} in InfluxDB` })
    }
    expect((await env.api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)).body.rejections).toEqual([])

    const { set, then } = commandFor[brand.model.name]
    const command = await commandThroughApi(env.stack, env.api, fleet.ownerToken, d.id, { set })
    expect(command.status).toBe(200)
    expect(command.answer).toMatchObject({ status: 'ok' })
    // The hub spoke the brand's dialect, not canonical JSON, and named the command so the ack finds it.
    expect(command.sent).toContain(command.answer.id)
    expect(command.sent).not.toBe(JSON.stringify({ id: command.answer.id, set }))
    // The appliance reports its new state right after acking.
    await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken),
      (r) => hasReadings(r.body.state, then), { what: `the state of ${brand.model.name} after the command` })
  })
})

describe('actions in a dialect', () => {
  it('pauses and resumes a Sudsmith washer through its mapped actions', async () => {
    const washer = brands.find((b) => b.model.name === 'sudsmith-w8')!
    const fleet = await seedFleet(env.api, { model: washer.model, makerName: washer.brand })
    const [d] = fleet.devices
    const sim = await washer.start({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rng: seededRng(42), intervalMs: 3_600_000 })
    simulators.push(sim)
    const started = await commandThroughApi(env.stack, env.api, fleet.ownerToken, d.id, { action: 'start', params: { programme: 'cotton' } })
    expect(started.answer).toMatchObject({ status: 'ok' })
    expect(JSON.parse(started.sent)).toEqual({ cid: started.answer.id, cmd: { op: 'START', prog: 'cotton' } })
    await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.cyclePhase?.value === 'fill')
    const paused = await commandThroughApi(env.stack, env.api, fleet.ownerToken, d.id, { action: 'pause' })
    expect(paused.answer).toMatchObject({ status: 'ok' })
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.cyclePhase?.value === 'paused')
    expect(view.body.state.lock.value).toBe(true)
    expect(view.body.state.remainingTime.value).toBeGreaterThan(3000)
    // Switched off, it has nothing to pause, and says so in its dialect.
    const stopped = await commandThroughApi(env.stack, env.api, fleet.ownerToken, d.id, { set: { power: false } })
    expect(stopped.answer).toMatchObject({ status: 'ok' })
    const refused = await commandThroughApi(env.stack, env.api, fleet.ownerToken, d.id, { action: 'pause' })
    expect(refused.status).toBe(200)
    expect(refused.answer).toMatchObject({ status: 'error', error: 'nothing is running' })
  })
})

describe('a mixed fleet, declared through the API as npm start does', () => {
  it('puts every brand, canonical or dialect, into canonical state with nothing rejected', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'trellis-fleet-'))
    try {
      const size = allSimulators.length * 2
      const demo = await ensureDemoFleet({ apiUrl: env.stack.httpUrl, size, simulators: allSimulators, file: path.join(dir, 'demo.json') })
      const fleet = await startFleet({ url: env.stack.mqttUrl, devices: fleetOf(demo, size, allSimulators), simulators: allSimulators, intervalMs: 60_000 })
      fleets.push(fleet)
      expect(fleet.failed).toEqual([])
      const list = await eventually(() => env.api.get('/v1/devices?limit=100', demo.owner.token),
        (r) => r.body.devices?.length === size && r.body.devices.every((d: { state: object }) => Object.keys(d.state).length > 0),
        { what: `${size} devices with state` })
      const modelNames = new Set(list.body.devices.map((d: { modelName: string }) => d.modelName))
      for (const b of brands) expect(modelNames.has(b.model.name), b.model.name).toBe(true)
      for (const device of list.body.devices as Array<{ id: string, modelName: string, state: Record<string, { value: ReadingValue }> }>) {
        for (const [name, { value }] of Object.entries(device.state)) {
          // Enums are the model's own; the rest must be valid canonical values (the tests above check each brand's exact conversions).
          if (catalogue[name as CapabilityName].kind === 'enum') continue
          const [cap] = resolveCapabilities([name as CapabilityName])
          expect(checkValue(cap, value, device.modelName), `${device.modelName} ${name}`).toBeNull()
        }
      }
      expect(env.stack.hub.deadLetters.recent()).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
