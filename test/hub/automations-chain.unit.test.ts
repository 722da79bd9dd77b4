import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { AutomationStore } from '../../hub/src/automations/automation-store.js'
import { Automations } from '../../hub/src/automations/automations.js'
import { AutomationDeclaration } from '../../hub/src/automations/rule.js'
import { CommandLog } from '../../hub/src/commands/command-log.js'
import type { CommandService } from '../../hub/src/commands/service.js'
import type { DeviceContext, DeviceDirectory } from '../../hub/src/registry/directory.js'
import { freshDatabase } from '../support/postgres.js'
import type { StateStore } from '../../hub/src/state/state.js'
import { compileDeclaration } from '../support/dialects.js'
import { eventually } from '../support/wait.js'

const model = compileDeclaration({ name: 'lamp', capabilities: ['power', 'temperature'] })
const ctxOf = (id: string, ownerId = 'ow-1') => ({ id, ownerId, makerId: 'mk-1', model, disabled: false, releasedAt: null }) as unknown as DeviceContext

/** Devices that do what they are told at once and report it: each command comes back as a reading of the target. */
async function household (deviceIds: string[], opts: { maxChainDepth?: number, maxPerOwner?: number, maxRuleBytes?: number } = {}) {
  const db = await freshDatabase()
  const sql = db.open()
  await CommandLog.open(sql)
  const devices = new Map(deviceIds.map((id) => [id, ctxOf(id)]))
  const directory = { peek: (id: string) => devices.get(id), get: async (id: string) => devices.get(id) } as unknown as DeviceDirectory
  const state = Object.assign(new EventEmitter(), { get: () => undefined }) as unknown as StateStore
  const sent: Array<{ deviceId: string, request: unknown }> = []
  let automations: Automations | undefined
  const commands = Object.assign(new EventEmitter(), {
    async send (ctx: DeviceContext, _owner: string, request: { set?: Record<string, unknown> }) {
      sent.push({ deviceId: ctx.id, request })
      setImmediate(() => automations!.offerReadings(ctx.id, Object.entries(request.set ?? {}).map(([capability, value]) => ({ capability, value }) as never)))
      return { id: `cmd-${sent.length}`, status: 'pending' }
    },
  }) as unknown as CommandService
  automations = await Automations.start({ store: await AutomationStore.open(sql), commands, directory, state, log: pino({ level: 'silent' }), ...opts })
  const create = async (trigger: string, target: string) => await automations!.create('ow-1', devices, AutomationDeclaration.parse({
    name: `${trigger} → ${target}`,
    trigger: { type: 'reading', deviceId: trigger, capability: 'power', op: 'equals', value: true },
    actions: [{ deviceId: target, command: { set: { power: true } } }],
    cooldownSeconds: 0,
  }))
  return { automations, devices, sent, create, close: async () => { automations!.close(); await sql.close(); await db.drop() } }
}

let close: (() => Promise<void>) | undefined
afterEach(async () => { await close?.() })

// Each test opens a database of its own on the run's PostgreSQL.
describe('causal chains', () => {
  it('lets a chain of three rules run and refuses the fourth, recording the chain', async () => {
    const h = await household(['d1', 'd2', 'd3', 'd4', 'd5'], { maxChainDepth: 3 })
    close = h.close
    const rules = [await h.create('d1', 'd2'), await h.create('d2', 'd3'), await h.create('d3', 'd4'), await h.create('d4', 'd5')]
    h.automations.offerReadings('d1', [{ capability: 'power', value: true }])
    const runs = await eventually(() => h.automations.runs(rules[3].id, 10), (r) => r.length === 1, { what: 'the fourth rule refused' })
    expect(runs[0]).toMatchObject({ outcome: 'loop', trigger: { chain: rules.slice(0, 3).map((r) => r.id) }, commands: [] })
    expect(runs[0].reason).toContain('the limit of 3')
    expect(h.sent.map((s) => s.deviceId)).toEqual(['d2', 'd3', 'd4'])
    // Each rule's run is written on its own: the fourth's can be stored before the first three's.
    for (const r of rules.slice(0, 3)) {
      const fired = await eventually(() => h.automations.runs(r.id, 10), (found) => found.length > 0, { what: `the run of ${r.id}` })
      expect(fired.map((run) => run.outcome)).toEqual(['fired'])
    }
  }, 30_000)

  it('starts a new chain for a reading nobody\'s rule caused', async () => {
    const h = await household(['d1', 'd2', 'd3'], { maxChainDepth: 1 })
    close = h.close
    const first = await h.create('d1', 'd2')
    const second = await h.create('d2', 'd3')
    h.automations.offerReadings('d1', [{ capability: 'power', value: true }])
    await eventually(() => h.automations.runs(second.id, 10), (r) => r.length === 1, { what: 'the second rule refused at depth 1' })
    expect((await h.automations.runs(second.id, 10))[0].outcome).toBe('loop')
    // d3 was never commanded: a reading of it is nobody's consequence, and its own rule fires.
    const third = await h.create('d3', 'd1')
    h.automations.offerReadings('d3', [{ capability: 'power', value: true }])
    const runs = await eventually(() => h.automations.runs(third.id, 10), (r) => r.length === 1, { what: 'the third rule' })
    expect(runs[0].outcome).toBe('fired')
    expect(runs[0].trigger.chain).toBeUndefined()
    // d1 was already on: the third rule's command is no new edge for the first.
    expect((await eventually(() => h.automations.runs(first.id, 10), (found) => found.length > 0, { what: 'the first rule\'s run' })).map((r) => r.outcome)).toEqual(['fired'])
  }, 30_000)
})

describe('bounds', () => {
  it('refuses an automation over the per-owner cap and a rule over the size limit, saying which', async () => {
    const h = await household(['d1', 'd2'], { maxPerOwner: 1, maxRuleBytes: 400 })
    close = h.close
    await h.create('d1', 'd2')
    await expect(h.create('d2', 'd1')).rejects.toMatchObject({ reason: 'limit', message: 'at most 1 automations per owner' })
    const big = AutomationDeclaration.parse({
      name: 'x'.repeat(100),
      trigger: { type: 'reading', deviceId: 'd1', capability: 'temperature', op: 'above', value: 30 },
      conditions: [1, 2, 3].map(() => ({ type: 'state', deviceId: 'd2', capability: 'power', op: 'equals', value: true })),
      actions: [{ deviceId: 'd2', command: { set: { power: false } } }],
    })
    await expect(h.automations.create('ow-2', h.devices, big)).rejects.toMatchObject({ reason: 'invalid', message: expect.stringMatching(/over the 400-byte limit/) })
  }, 30_000)
})
