import { afterAll, describe, expect, it } from 'vitest'
import type { AedesPublishPacket } from 'aedes'
import { connectDevice, topics } from '@trellis/device-sdk'
import { brands, seededRng, type BrandSimulator } from '@trellis/simulators'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

const simulators: BrandSimulator[] = []

const env = useStack()

afterAll(async () => {
  await Promise.all(simulators.map((s) => s.stop().catch(() => {})))
})

const voltwise = brands.find((b) => b.model.name === 'voltwise-p1')!
const breezewell = brands.find((b) => b.model.name === 'breezewell-ap3')!

/** One owner with simulated appliances of the given built-in brands (each brand's maker provisions them), all reporting power on. */
async function household (kinds: Array<typeof voltwise>) {
  const email = `owner-${Math.random().toString(36).slice(2)}@example.com`
  const owner = await env.api.post('/v1/owners', { email, password: 'correct horse battery' })
  const ids: string[] = []
  for (const [i, brand] of kinds.entries()) {
    const maker = await env.api.post('/v1/makers', { name: `${brand.brand} ${i}` })
    const model = await env.api.post('/v1/models', brand.model, maker.body.token)
    const provisioned = await env.api.post('/v1/devices', { model: model.body.id, count: 1 }, maker.body.token)
    const [d] = provisioned.body.devices
    expect((await env.api.post('/v1/devices/claim', { claimCode: d.claimCode }, owner.body.token)).status).toBe(200)
    simulators.push(await brand.start({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret, rng: seededRng(i + 7), intervalMs: 3_600_000 }))
    await eventually(() => env.api.get(`/v1/devices/${d.id}`, owner.body.token), (r) => r.body.state?.power?.value === true, { what: `${brand.model.name} reporting power on` })
    ids.push(d.id)
  }
  return { token: owner.body.token as string, ids }
}

/** Records every command payload published to a device, in its dialect. */
async function spyCommands (deviceId: string): Promise<string[]> {
  const seen: string[] = []
  const spy = (packet: AedesPublishPacket, done: () => void) => { seen.push((packet.payload as Buffer).toString('utf8')); done() }
  await new Promise<void>((resolve) => env.stack.hub.broker.aedes.subscribe(topics.commands(deviceId), spy as never, resolve))
  return seen
}

const runsOf = async (id: string, token: string) => (await env.api.get(`/v1/automations/${id}/runs`, token)).body.runs as any[]

describe('automations across brands', () => {
  it('turns a Breezewell purifier off when a Voltwise plug is switched off, in the purifier\'s dialect, and records the run', async () => {
    const home = await household([voltwise, breezewell])
    const [plug, purifier] = home.ids
    const sent = await spyCommands(purifier)
    const created = await env.api.post('/v1/automations', {
      name: 'purifier follows the plug',
      trigger: { type: 'reading', deviceId: plug, capability: 'power', op: 'equals', value: false },
      actions: [{ deviceId: purifier, command: { set: { power: false } } }],
      cooldownSeconds: 0,
    }, home.token)
    expect(created.status).toBe(201)
    expect(created.body.suspended).toBeNull()

    expect((await env.api.post(`/v1/devices/${plug}/commands?wait=10s`, { set: { power: false } }, home.token)).body.status).toBe('ok')
    const runs = await eventually(() => runsOf(created.body.id, home.token), (r) => r.length === 1 && r[0].commands[0]?.status === 'ok', { what: 'the run with its command acked' })
    expect(runs[0]).toMatchObject({ outcome: 'fired', trigger: { type: 'reading', deviceId: plug, capability: 'power', value: false } })
    expect(runs[0].commands[0]).toMatchObject({ deviceId: purifier, outcome: 'sent' })
    await eventually(() => env.api.get(`/v1/devices/${purifier}`, home.token), (r) => r.body.state?.power?.value === false, { what: 'the purifier off' })
    // The hub spoke Breezewell's property dialect, not canonical JSON.
    expect(sent).toHaveLength(1)
    expect(sent[0]).toContain('siid')
    expect(sent[0]).toContain(runs[0].commands[0].commandId)
    const command = await env.api.get(`/v1/devices/${purifier}/commands/${runs[0].commands[0].commandId}`, home.token)
    expect(command.body).toMatchObject({ origin: 'automation', status: 'ok' })
  })

  it('cuts off a loop (A turns B off, B turns A on, A would turn B off again) and records the reason', async () => {
    const home = await household([voltwise, voltwise])
    const [a, b] = home.ids
    const toB = await env.api.post('/v1/automations', {
      name: 'B follows A',
      trigger: { type: 'reading', deviceId: a, capability: 'power', op: 'changes' },
      actions: [{ deviceId: b, command: { set: { power: false } } }],
      cooldownSeconds: 0,
    }, home.token)
    const toA = await env.api.post('/v1/automations', {
      name: 'A follows B',
      trigger: { type: 'reading', deviceId: b, capability: 'power', op: 'changes' },
      actions: [{ deviceId: a, command: { set: { power: true } } }],
      cooldownSeconds: 0,
    }, home.token)
    expect([toB.status, toA.status]).toEqual([201, 201])

    await env.api.post(`/v1/devices/${a}/commands?wait=10s`, { set: { power: false } }, home.token)
    const runs = await eventually(() => runsOf(toB.body.id, home.token), (r) => r.some((run) => run.outcome === 'loop'), { what: 'the loop cut off' })
    expect(runs.map((r) => r.outcome)).toEqual(['loop', 'fired'])
    expect(runs[0].reason).toContain('loop cut')
    expect(runs[0].trigger.chain).toEqual([toB.body.id, toA.body.id])
    expect(runs[0].commands).toEqual([])
    const other = await runsOf(toA.body.id, home.token)
    expect(other.map((r) => r.outcome)).toEqual(['fired'])
    expect(other[0].trigger.chain).toEqual([toB.body.id])
  })

  it('holds the cooldown: a second trigger within it sends nothing and is recorded once', async () => {
    const home = await household([voltwise, breezewell])
    const [plug, purifier] = home.ids
    const sent = await spyCommands(purifier)
    const created = await env.api.post('/v1/automations', {
      name: 'purifier off when the plug changes',
      trigger: { type: 'reading', deviceId: plug, capability: 'power', op: 'changes' },
      actions: [{ deviceId: purifier, command: { set: { power: false } } }],
      cooldownSeconds: 3600,
    }, home.token)
    await env.api.post(`/v1/devices/${plug}/commands?wait=10s`, { set: { power: false } }, home.token)
    await eventually(() => runsOf(created.body.id, home.token), (r) => r.length === 1 && r[0].commands[0]?.status === 'ok', { what: 'the first firing acked' })
    await env.api.post(`/v1/devices/${plug}/commands?wait=10s`, { set: { power: true } }, home.token)
    await env.api.post(`/v1/devices/${plug}/commands?wait=10s`, { set: { power: false } }, home.token)
    const runs = await eventually(() => runsOf(created.body.id, home.token), (r) => r.length >= 2, { what: 'the cooldown refusal' })
    expect(runs.map((r) => r.outcome)).toEqual(['cooldown', 'fired'])
    expect(runs[0].reason).toMatch(/cooldown of 3600 s/)
    expect(sent).toHaveLength(1)
  })
})

describe('ownership', () => {
  it('refuses a rule naming another owner\'s device, and stops firing for the former owner once a device is released', async () => {
    const home = await household([voltwise, breezewell])
    const [plug, purifier] = home.ids
    const stranger = await seedFleet(env.api, { count: 1 })
    const foreign = await env.api.post('/v1/automations', {
      name: 'not mine',
      trigger: { type: 'reading', deviceId: plug, capability: 'power', op: 'changes' },
      actions: [{ deviceId: stranger.devices[0].id, command: { set: { power: false } } }],
    }, home.token)
    expect(foreign.status).toBe(404)

    const sent = await spyCommands(purifier)
    const created = await env.api.post('/v1/automations', {
      name: 'purifier follows the plug',
      trigger: { type: 'reading', deviceId: plug, capability: 'power', op: 'changes' },
      actions: [{ deviceId: purifier, command: { set: { power: false } } }],
      cooldownSeconds: 0,
    }, home.token)
    expect((await env.api.post(`/v1/devices/${purifier}/release`, {}, home.token)).status).toBeLessThan(300)
    await eventually(() => env.api.get(`/v1/automations/${created.body.id}`, home.token), (r) => r.body.suspended !== null, { what: 'the rule suspended' })
    expect((await env.api.get(`/v1/automations/${created.body.id}`, home.token)).body.suspended).toContain(purifier)

    await env.api.post(`/v1/devices/${plug}/commands?wait=10s`, { set: { power: false } }, home.token)
    const runs = await eventually(() => runsOf(created.body.id, home.token), (r) => r.length === 1, { what: 'the refused run' })
    expect(runs[0]).toMatchObject({ outcome: 'ownership', commands: [] })
    expect(runs[0].reason).toContain(purifier)
    expect(sent).toEqual([])
  })
})

describe('dry-run on history', () => {
  it('finds when a rule would have fired in the stored history, and what it would have sent', async () => {
    const fleet = await seedFleet(env.api, { count: 1 })
    const [d] = fleet.devices
    const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
    env.devices.push(device)
    const hour = 3_600_000
    const start = Math.floor(Date.now() / hour) * hour - 3 * 24 * hour
    // Crosses 25 °C upwards at +2 h and +5 h; +6 h stays above, so it does not fire again.
    const temperatures = [20, 22, 26, 24, 21, 27, 28, 19]
    for (const [i, temperature] of temperatures.entries()) await device.report({ temperature }, start + i * hour)
    await eventually(() => env.api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${new Date(start).toISOString()}`, fleet.ownerToken),
      (r) => r.body.points?.length === temperatures.length, { what: 'the history stored' })

    const rule = {
      name: 'cool down',
      trigger: { type: 'reading', deviceId: d.id, capability: 'temperature', op: 'above', value: 25 },
      actions: [{ deviceId: d.id, command: { set: { power: false } }, delaySeconds: 60 }],
      cooldownSeconds: 0,
    }
    const res = await env.api.post('/v1/automations:test', { rule, days: 7 }, fleet.ownerToken)
    expect(res.status).toBe(200)
    expect(res.body.pointsReplayed).toBe(temperatures.length)
    expect(res.body.firings.map((f: any) => [f.at, f.value])).toEqual([
      [new Date(start + 2 * hour).toISOString(), 26],
      [new Date(start + 5 * hour).toISOString(), 27],
    ])
    expect(res.body.firings[0].commands).toEqual([{ at: new Date(start + 2 * hour + 60_000).toISOString(), deviceId: d.id, command: { set: { power: false } } }])
    // Nothing is stored or sent by a dry run.
    expect((await env.api.get('/v1/automations', fleet.ownerToken)).body.automations).toEqual([])

    // A 4-hour cooldown keeps the second crossing from firing.
    const cooled = await env.api.post('/v1/automations:test', { rule: { ...rule, cooldownSeconds: 4 * 3600 }, days: 7 }, fleet.ownerToken)
    expect(cooled.body.firings).toHaveLength(1)
    expect(cooled.body.cooldownSkips).toBe(1)
  })
})
