// Some 420 lines, over the house's ~300: a rule's life (armed, triggered,
// refused or fired, its delayed commands sent) is one state machine over
// `running`, kept in one place. What stands apart is apart: the schema
// (rule.ts), the index (rule-index.ts), pure evaluation (evaluate.ts), the
// sun (solar.ts), storage (automation-store.ts) and replay (dry-run.ts).
import cron, { type ScheduledTask } from 'node-cron'
import type { Logger } from 'pino'
import type { ReadingValue } from '@trellis/device-sdk'
import type { DeviceContext, DeviceDirectory } from '../registry/directory.js'
import { newId } from '../registry/secrets.js'
import { CommandRefused, type CommandService } from '../commands/service.js'
import type { CommandRecord } from '../commands/command-log.js'
import { commandProblem } from '../commands/validate.js'
import type { Reading } from '../normalize/index.js'
import type { PresenceChange, StateStore } from '../state/state.js'
import { scheduleProblem } from '../schedules/cron-expression.js'
import type { AutomationRun, AutomationStore, ConditionResult, RunCommand, RunOutcome, RunTrigger } from './automation-store.js'
import { checkCondition, readingEdge } from './evaluate.js'
import { RuleIndex, type ArmedRule } from './rule-index.js'
import { devicesOf, type Automation, type AutomationDeclaration } from './rule.js'
import { nextSunEvent } from './solar.js'

export interface AutomationsOptions {
  store: AutomationStore
  commands: CommandService
  directory: DeviceDirectory
  state: StateStore
  log: Logger
  /** Automations per owner at most. Default 100. */
  maxPerOwner?: number
  /** Largest rule, as JSON, in bytes. Default 8192. */
  maxRuleBytes?: number
  /** Runs kept per automation, newest first. Default 500. */
  runsKept?: number
  /**
   * Rules that may fire one after another in a causal chain (a rule's command
   * changes a device whose reading fires the next rule). The next is refused
   * and recorded as a `loop`. Default 3.
   */
  maxChainDepth?: number
  /**
   * A device's readings this long after a rule sent it a command count as
   * caused by that rule (the ack's state, the report that follows). Default 10000 ms.
   */
  causalWindowMs?: number
  /**
   * Whether this process fires time and sun triggers now. A cluster arms every
   * rule on every node and lets only its leader fire them. Default: always.
   */
  firesTimers?: () => boolean
  /**
   * Whether a presence change of this device fires rules here. A cluster
   * shares presence with every node and lets the node that holds the device's
   * connection fire. Default: every change.
   */
  judgesPresence?: (deviceId: string) => boolean
  /** Called after an automation is created, replaced or deleted here: a cluster tells the other nodes to `reload()`. Default none. */
  onChange?: () => void
}

/** A rule the hub refuses, with the reason. */
export class AutomationRefused extends Error {
  constructor (readonly reason: 'invalid' | 'limit', message: string, readonly limit?: number) { super(message) }
}

/** The causal chain a command of a rule started: the rules fired so far, oldest first. */
interface Cause { chain: string[], until: number }

interface Running {
  armed: ArmedRule
  /** epoch ms of the last firing, for the cooldown. */
  lastFiredAt: number
  /** Whether a refusal for the cooldown was recorded since: one per cooldown, not one per reading. */
  cooldownRecorded: boolean
  timer: ScheduledTask | NodeJS.Timeout | null
  /** Why the rule does not fire, when it does not (a device no longer the owner's). */
  suspended: string | null
}

/**
 * Owners' automations: rules of trigger, conditions and actions across their
 * devices, whatever the brand. Reading and presence triggers are looked up in
 * a RuleIndex on the ingest path; time and sun triggers run on timers. Every
 * firing, and every refusal (cooldown, loop, conditions, ownership), is
 * recorded as a run.
 *
 * Once per event, on one node or many: a reading reaches the one node that
 * ingests it; a presence change fires where `judgesPresence` says (the node
 * holding the device); time and sun triggers fire where `firesTimers` says
 * (the cluster's leader). See docs/architecture.md, Automations.
 */
export class Automations {
  readonly index = new RuleIndex()
  private readonly running = new Map<string, Running>()
  /** Rule ids by every device they name, to follow a change of owner. */
  private readonly byDevice = new Map<string, Set<string>>()
  private readonly causes = new Map<string, Cause>()
  private readonly delayed = new Set<NodeJS.Timeout>()
  private readonly sincePruned = new Map<string, number>()
  private readonly maxPerOwner: number
  private readonly maxRuleBytes: number
  private readonly runsKept: number
  private readonly maxChainDepth: number
  private readonly causalWindowMs: number
  private closed = false

  private constructor (private readonly opts: AutomationsOptions) {
    this.maxPerOwner = opts.maxPerOwner ?? 100
    this.maxRuleBytes = opts.maxRuleBytes ?? 8192
    this.runsKept = opts.runsKept ?? 500
    this.maxChainDepth = opts.maxChainDepth ?? 3
    this.causalWindowMs = opts.causalWindowMs ?? 10_000
    opts.state.on('presence', this.onPresence)
    opts.commands.on('change', this.onCommandChange)
  }

  /** Arms every enabled automation the registry holds. */
  static async start (opts: AutomationsOptions): Promise<Automations> {
    const automations = new Automations(opts)
    const all = await opts.store.all()
    for (const a of all) await automations.arm(a)
    if (all.length > 0) opts.log.info({ restored: all.length }, 'automations restored')
    return automations
  }

  /** Why a declaration cannot run for this owner's devices (as given, each checked by the caller to be the owner's), or null. */
  problem (rule: AutomationDeclaration, devices: ReadonlyMap<string, DeviceContext>): string | null {
    const bytes = Buffer.byteLength(JSON.stringify(rule))
    if (bytes > this.maxRuleBytes) return `the rule is ${bytes} bytes as JSON, over the ${this.maxRuleBytes}-byte limit`
    const t = rule.trigger
    if (t.type === 'reading') {
      const cap = devices.get(t.deviceId)!.model.capabilities.get(t.capability as never)
      if (!cap) return `trigger: device ${t.deviceId} has no capability ${t.capability}`
      if ((t.op === 'above' || t.op === 'below') && cap.kind !== 'number') return `trigger: ${t.capability} is not a number; use "equals" or "changes"`
    }
    if (t.type === 'time') {
      const p = scheduleProblem(t.cron, t.timezone)
      if (p) return `trigger: ${p}`
    }
    for (const [i, c] of rule.conditions.entries()) {
      if (c.type === 'state' && !devices.get(c.deviceId)!.model.capabilities.has(c.capability as never)) return `conditions[${i}]: device ${c.deviceId} has no capability ${c.capability}`
      if (c.type === 'time') {
        const p = scheduleProblem('* * * * *', c.timezone)
        if (p) return `conditions[${i}]: ${p}`
      }
    }
    for (const [i, a] of rule.actions.entries()) {
      const p = commandProblem(devices.get(a.deviceId)!.model, a.command)
      if (p) return `actions[${i}]: ${p}`
    }
    return null
  }

  async create (ownerId: string, devices: ReadonlyMap<string, DeviceContext>, rule: AutomationDeclaration): Promise<Automation> {
    const problem = this.problem(rule, devices)
    if (problem) throw new AutomationRefused('invalid', problem)
    if (await this.opts.store.countByOwner(ownerId) >= this.maxPerOwner) throw new AutomationRefused('limit', `at most ${this.maxPerOwner} automations per owner`, this.maxPerOwner)
    const automation: Automation = { ...rule, id: newId('aut'), ownerId, createdAt: new Date().toISOString() }
    await this.opts.store.insert(automation)
    await this.arm(automation)
    this.opts.onChange?.()
    return automation
  }

  async replace (existing: Automation, devices: ReadonlyMap<string, DeviceContext>, rule: AutomationDeclaration): Promise<Automation> {
    const problem = this.problem(rule, devices)
    if (problem) throw new AutomationRefused('invalid', problem)
    const automation: Automation = { ...rule, id: existing.id, ownerId: existing.ownerId, createdAt: existing.createdAt }
    if (!await this.opts.store.update(automation)) return automation
    this.disarm(existing.id)
    await this.arm(automation)
    this.opts.onChange?.()
    return automation
  }

  async list (ownerId: string): Promise<Automation[]> { return await this.opts.store.byOwner(ownerId) }

  async get (ownerId: string, id: string): Promise<Automation | null> { return await this.opts.store.get(ownerId, id) }

  async delete (ownerId: string, id: string): Promise<boolean> {
    const deleted = await this.opts.store.delete(ownerId, id)
    if (deleted) {
      this.disarm(id)
      this.sincePruned.delete(id)
      this.opts.onChange?.()
    }
    return deleted
  }

  /** Reads every automation again (another node of a cluster changed some): arms new and changed ones, disarms what is gone. */
  async reload (): Promise<void> {
    const all = await this.opts.store.all()
    const present = new Set(all.map((a) => a.id))
    for (const id of [...this.running.keys()]) if (!present.has(id)) this.disarm(id)
    for (const a of all) {
      const current = this.running.get(a.id)?.armed.rule
      if (current !== undefined && JSON.stringify(current) === JSON.stringify(a)) continue
      this.disarm(a.id)
      await this.arm(a)
    }
  }

  async runs (id: string, limit: number): Promise<AutomationRun[]> { return await this.opts.store.runs(id, limit) }

  /** Why a stored rule does not fire now, or null: disabled, or a device no longer the owner's. */
  suspended (a: Automation): string | null {
    if (!a.enabled) return 'disabled'
    return this.running.get(a.id)?.suspended ?? null
  }

  /**
   * The ingest hook: offers a device's new readings to the rules that watch
   * them. The device's state already holds them. A device no rule watches
   * costs one failed Map lookup.
   */
  offerReadings (deviceId: string, readings: readonly Reading[]): void {
    const watched = this.index.watched(deviceId)
    if (watched === undefined) return
    for (let i = 0; i < readings.length; i++) {
      const rules = watched.get(readings[i].capability)
      if (rules !== undefined) for (const armed of rules) this.onReading(armed, readings[i].value)
    }
  }

  /** A device changed hands: its rules fire again only while every device they name is their owner's. */
  async ownershipChanged (deviceId: string): Promise<void> {
    const ids = this.byDevice.get(deviceId)
    if (!ids) return
    for (const id of [...ids]) {
      const r = this.running.get(id)
      if (!r) continue
      const problem = await this.ownershipProblem(r.armed.rule)
      if (problem && !r.suspended) this.opts.log.info({ automationId: id, deviceId }, 'automation suspended: a device changed owner')
      r.suspended = problem
    }
  }

  close (): void {
    this.closed = true
    this.opts.state.off('presence', this.onPresence)
    this.opts.commands.off('change', this.onCommandChange)
    for (const id of [...this.running.keys()]) this.disarm(id)
    for (const t of this.delayed) clearTimeout(t)
    this.delayed.clear()
  }

  // --- arming ---------------------------------------------------------------

  private async arm (rule: Automation): Promise<void> {
    if (this.closed || !rule.enabled) return
    const last = rule.trigger.type === 'reading' ? this.opts.state.get(rule.trigger.deviceId)?.readings.get(rule.trigger.capability)?.value : undefined
    const armed: ArmedRule = { rule, last, holding: null }
    const running: Running = { armed, lastFiredAt: 0, cooldownRecorded: false, timer: null, suspended: await this.ownershipProblem(rule) }
    if (this.closed) return
    this.running.set(rule.id, running)
    for (const d of devicesOf(rule)) {
      let set = this.byDevice.get(d)
      if (!set) this.byDevice.set(d, set = new Set())
      set.add(rule.id)
    }
    const t = rule.trigger
    if (t.type === 'time') {
      running.timer = cron.schedule(t.cron, () => { if (this.firesTimers()) void this.fire(armed, { type: 'time' }, []) }, { timezone: t.timezone, name: `automation-${rule.id}`, noOverlap: true })
    } else if (t.type === 'sun') this.armSun(running)
    else this.index.add(armed)
  }

  private armSun (running: Running): void {
    const t = running.armed.rule.trigger
    if (t.type !== 'sun' || this.closed) return
    const next = nextSunEvent(t.event, t.offsetMinutes, t.location, new Date())
    if (!next) return
    // setTimeout holds at most 2^31-1 ms (24.8 days); a later event waits in steps.
    const wait = Math.min(next.getTime() - Date.now(), 2 ** 31 - 1)
    running.timer = setTimeout(() => {
      if (Date.now() >= next.getTime() - 1000 && this.firesTimers()) void this.fire(running.armed, { type: 'sun' }, [])
      this.armSun(running)
    }, Math.max(0, wait))
    running.timer.unref()
  }

  private disarm (id: string): void {
    const r = this.running.get(id)
    if (!r) return
    this.running.delete(id)
    this.index.remove(r.armed)
    if (r.armed.holding) clearTimeout(r.armed.holding)
    if (r.timer) {
      if ('destroy' in r.timer) void r.timer.destroy()
      else clearTimeout(r.timer)
    }
    for (const d of devicesOf(r.armed.rule)) {
      const set = this.byDevice.get(d)
      set?.delete(id)
      if (set?.size === 0) this.byDevice.delete(d)
    }
  }

  private async ownershipProblem (rule: Automation): Promise<string | null> {
    for (const d of devicesOf(rule)) {
      const ctx = await this.opts.directory.get(d)
      if (!ctx || ctx.ownerId !== rule.ownerId) return `device ${d} is no longer the owner's`
    }
    return null
  }

  // --- triggers -------------------------------------------------------------

  private onReading (armed: ArmedRule, value: ReadingValue): void {
    const t = armed.rule.trigger
    if (t.type !== 'reading') return
    const previous = armed.last
    armed.last = value
    const edge = readingEdge(t, previous, value)
    if (edge === 'release' && armed.holding) {
      clearTimeout(armed.holding)
      armed.holding = null
    } else if (edge === 'hold' && !armed.holding) {
      const chain = this.chainOf(t.deviceId)
      armed.holding = setTimeout(() => {
        armed.holding = null
        void this.fire(armed, { type: 'reading', deviceId: t.deviceId, capability: t.capability, value: armed.last ?? null }, chain)
      }, t.forSeconds * 1000)
      armed.holding.unref()
    } else if (edge === 'fire') {
      void this.fire(armed, { type: 'reading', deviceId: t.deviceId, capability: t.capability, value }, this.chainOf(t.deviceId))
    }
  }

  private readonly firesTimers = (): boolean => this.opts.firesTimers?.() ?? true

  private readonly onPresence = (change: PresenceChange): void => {
    const rules = this.index.onPresence(change.deviceId)
    if (rules === undefined) return
    if (this.opts.judgesPresence && !this.opts.judgesPresence(change.deviceId)) return
    for (const armed of rules) {
      const t = armed.rule.trigger
      if (t.type !== 'presence' || (t.online !== undefined && t.online !== change.online)) continue
      void this.fire(armed, { type: 'presence', deviceId: change.deviceId, online: change.online }, [])
    }
  }

  /** An ack's reported state is a reading too (the way most appliances confirm a command). */
  private readonly onCommandChange = (record: CommandRecord): void => {
    if (record.state === null || record.status !== 'ok' || this.index.watched(record.deviceId) === undefined) return
    this.offerReadings(record.deviceId, Object.entries(record.state).map(([capability, value]) => ({ capability, value }) as Reading))
  }

  /** The chain of rules a device's reading now continues, if a rule's command caused it. */
  private chainOf (deviceId: string): string[] {
    const cause = this.causes.get(deviceId)
    if (!cause) return []
    if (cause.until < Date.now()) {
      this.causes.delete(deviceId)
      return []
    }
    return cause.chain
  }

  // --- firing ---------------------------------------------------------------

  /** Checks chain, cooldown, conditions and ownership, sends the actions, records the run; never throws. */
  private async fire (armed: ArmedRule, trigger: RunTrigger, chain: string[]): Promise<unknown> {
    const rule = armed.rule
    const running = this.running.get(rule.id)
    if (!running || running.armed !== armed || this.closed) return
    const now = Date.now()
    const record = (outcome: RunOutcome, reason: string | null, conditions: ConditionResult[] = [], commands: RunCommand[] = []) =>
      this.record(rule, { firedAt: new Date(now).toISOString(), outcome, reason, trigger: { ...trigger, ...(chain.length > 0 && { chain }) }, conditions, commands })

    if (chain.includes(rule.id)) {
      return await record('loop', `loop cut: this rule already fired in this chain (${[...chain, rule.id].join(' → ')}); a rule's commands may not fire it again`)
    }
    if (chain.length >= this.maxChainDepth) {
      return await record('loop', `chain cut: ${chain.length} rules already fired one after another (${[...chain, rule.id].join(' → ')}), the limit of ${this.maxChainDepth}`)
    }
    if (now - running.lastFiredAt < rule.cooldownSeconds * 1000) {
      if (running.cooldownRecorded) return
      running.cooldownRecorded = true
      const left = Math.ceil((running.lastFiredAt + rule.cooldownSeconds * 1000 - now) / 1000)
      return await record('cooldown', `fired ${new Date(running.lastFiredAt).toISOString()}; cooldown of ${rule.cooldownSeconds} s has ${left} s left (later refusals in this cooldown are not recorded)`)
    }
    if (running.suspended) return await record('ownership', running.suspended)
    const at = new Date(now)
    const conditions = rule.conditions.map((c, i) => checkCondition(c, i, at, (d, cap) => this.opts.state.get(d)?.readings.get(cap)?.value))
    if (conditions.some((c) => !c.met)) return await record('conditions', 'a condition was not met', conditions)
    running.lastFiredAt = now
    running.cooldownRecorded = false

    // Checked again at firing: a device released since the rule was armed is no longer the owner's.
    const devices = new Map<string, DeviceContext>()
    for (const d of devicesOf(rule)) {
      const ctx = this.opts.directory.peek(d) ?? await this.opts.directory.get(d)
      if (!ctx || ctx.ownerId !== rule.ownerId) {
        running.suspended = `device ${d} is no longer the owner's`
        return await record('ownership', running.suspended, conditions)
      }
      devices.set(d, ctx)
    }
    const nextChain = [...chain, rule.id]
    const commands = await Promise.all(rule.actions.map(async (a): Promise<RunCommand> => {
      const base = { deviceId: a.deviceId, delaySeconds: a.delaySeconds }
      if (a.delaySeconds > 0) return { ...base, outcome: 'scheduled', commandId: null, status: 'scheduled', error: null }
      return { ...base, ...await this.send(rule, devices.get(a.deviceId)!, a.command, nextChain) }
    }))
    const runId = await record('fired', null, conditions, commands)
    for (const [i, a] of rule.actions.entries()) {
      if (a.delaySeconds === 0) continue
      const timer = setTimeout(() => {
        this.delayed.delete(timer)
        void this.sendDelayed(rule, a.deviceId, a.command, nextChain, runId, i, commands)
      }, a.delaySeconds * 1000)
      timer.unref()
      this.delayed.add(timer)
    }
  }

  private async sendDelayed (rule: Automation, deviceId: string, command: Automation['actions'][number]['command'], chain: string[], runId: number | null, index: number, commands: RunCommand[]): Promise<void> {
    if (this.closed || !this.running.has(rule.id)) return
    const ctx = await this.opts.directory.get(deviceId)
    const outcome = !ctx || ctx.ownerId !== rule.ownerId
      ? { outcome: 'failed', commandId: null, status: 'failed', error: `device ${deviceId} is no longer the owner's` }
      : await this.send(rule, ctx, command, chain)
    commands[index] = { ...commands[index], ...outcome }
    if (runId !== null) await this.opts.store.updateRunCommands(runId, commands).catch((err: Error) => this.opts.log.error({ err }, 'automation run could not be updated'))
  }

  private async send (rule: Automation, ctx: DeviceContext, command: Automation['actions'][number]['command'], chain: string[]): Promise<Omit<RunCommand, 'deviceId' | 'delaySeconds'>> {
    // Set before sending: the ack may come back before send() resolves.
    this.causes.set(ctx.id, { chain, until: Date.now() + this.causalWindowMs })
    try {
      const sent = await this.opts.commands.send(ctx, rule.ownerId, command, { waitMs: 0, origin: 'automation' })
      return { outcome: 'sent', commandId: sent.id, status: sent.status, error: null }
    } catch (err) {
      if (err instanceof CommandRefused) return { outcome: err.reason, commandId: null, status: err.reason, error: err.message }
      this.opts.log.error({ err, automationId: rule.id, deviceId: ctx.id }, 'automation command failed')
      return { outcome: 'failed', commandId: null, status: 'failed', error: (err as Error).message }
    }
  }

  private async record (rule: Automation, run: Omit<AutomationRun, 'id'>): Promise<number | null> {
    if (this.closed) return null
    try {
      const id = await this.opts.store.recordRun(rule.id, run)
      // Pruning every tenth of the kept count bounds the table at 1.1 × runsKept per automation.
      const since = (this.sincePruned.get(rule.id) ?? 0) + 1
      this.sincePruned.set(rule.id, since)
      if (since >= Math.max(1, Math.floor(this.runsKept / 10))) {
        this.sincePruned.set(rule.id, 0)
        await this.opts.store.pruneRuns(rule.id, this.runsKept)
      }
      return id
    } catch (err) {
      this.opts.log.error({ err, automationId: rule.id }, 'automation run could not be recorded')
      return null
    }
  }
}
