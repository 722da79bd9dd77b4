import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Command, ReadingValue } from '@trellis/device-sdk'
import { brands, seededRandom, type BrandSimulator } from '../../simulators/src/brands/index.js'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { commandThroughDialect } from '../support/commands.js'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
const simulators: BrandSimulator[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(simulators.map((s) => s.stop().catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

/** A command each brand's appliance understands, and the canonical state it leads to. */
const commandFor: Record<string, { set: Command['set'], then: Record<string, ReadingValue> }> = {
  'frostline-f2': { set: { targetTemperature: 3.5 }, then: { targetTemperature: 3.5 } },
  'breezewell-ap3': { set: { power: false }, then: { power: false } },
  'hearthway-t100': { set: { targetTemperature: 22, mode: 'cool' }, then: { targetTemperature: 22, mode: 'cool' } },
  'voltwise-p1': { set: { power: false }, then: { power: false, powerDraw: 0, current: 0 } },
  'sudsmith-w8': { set: { power: false }, then: { power: false, cyclePhase: 'idle', remainingTime: 0 } },
}

function expectReadings (state: Record<string, { value: ReadingValue }>, expected: Record<string, ReadingValue>) {
  for (const [capability, value] of Object.entries(expected)) {
    expect(state[capability], capability).toBeDefined()
    if (typeof value === 'number') expect(state[capability].value, capability).toBeCloseTo(value, 6)
    else expect(state[capability].value, capability).toBe(value)
  }
}

describe.each(brands.map((b, i) => [b.model.name, b, i] as const))('a simulated %s appliance', (_name, brand, index) => {
  it('reports in its dialect; the hub stores canonical readings in InfluxDB and in its state, and it answers commands in its dialect', async () => {
    const fleet = await seedFleet(api, { model: brand.model, makerName: brand.brand })
    const [d] = fleet.devices
    // A long interval: the test triggers each report itself, so it knows what was sent.
    const sim = await brand.start({ url: stack.mqttUrl, deviceId: d.id, secret: d.secret, rng: seededRandom(index + 1), reportIntervalMs: 3_600_000 })
    simulators.push(sim)

    const sent = await sim.report()
    const view = await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken),
      (r) => Object.keys(sent).every((c) => r.body.state?.[c] !== undefined), { what: `the state of ${brand.model.name}` })
    expect(view.body).toMatchObject({ brand: brand.brand, modelName: brand.model.name, online: true })
    expectReadings(view.body.state, sent)

    for (const [capability, value] of Object.entries(sent)) {
      const rows = await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "${capability}" WHERE "device" = '${d.id}'`), (r) => r.length >= 1, { what: `${capability} in InfluxDB` })
      if (typeof value === 'number') expect(rows.at(-1)!.value as number, capability).toBeCloseTo(value, 6)
      else expect(rows.at(-1)!.value, capability).toBe(value)
    }
    expect((await api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)).body.rejections).toEqual([])

    const { set, then } = commandFor[brand.model.name]
    const { ack } = await commandThroughDialect(stack, d.id, { id: `cmd-${index}`, set })
    expect(ack).toEqual({ ok: true, ack: { id: `cmd-${index}`, status: 'ok' } })
    // The appliance reports its new state right after acking.
    const after = await eventually(() => api.get(`/v1/devices/${d.id}`, fleet.ownerToken),
      (r) => Object.entries(then).every(([c, v]) => typeof v === 'number' ? Math.abs(r.body.state?.[c]?.value - v) < 1e-6 : r.body.state?.[c]?.value === v),
      { what: `the state of ${brand.model.name} after the command` })
    expectReadings(after.body.state, then)
  })
})
