import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { pino } from 'pino'
import { buildApi, type ApiOptions } from '../../hub/src/api/app.js'
import type { ApiContext } from '../../hub/src/api/context.js'
import type { RouteDef } from '../../hub/src/api/route.js'
import { automationRoutes } from '../../hub/src/api/routes/automations.js'
import type { Automations } from '../../hub/src/automations/automations.js'
import type { Automation, AutomationDeclaration } from '../../hub/src/automations/rule.js'
import { commandRoutes } from '../../hub/src/api/routes/commands.js'
import { presenceRoutes } from '../../hub/src/api/routes/presence.js'
import { scheduleRoutes } from '../../hub/src/api/routes/schedules.js'
import { streamRoutes } from '../../hub/src/api/routes/stream.js'
import { AuditLog } from '../../hub/src/audit/audit-log.js'
import type { CommandRecord } from '../../hub/src/commands/command-log.js'
import type { CommandService } from '../../hub/src/commands/service.js'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'
import { HubMetrics } from '../../hub/src/metrics.js'
import type { PresenceMonitor } from '../../hub/src/presence/presence.js'
import { DeviceDirectory } from '../../hub/src/registry/directory.js'
import { Registry } from '../../hub/src/registry/registry.js'
import { freshDatabase } from './postgres.js'
import type { Schedule } from '../../hub/src/schedules/schedule-store.js'
import type { Scheduler } from '../../hub/src/schedules/scheduler.js'
import { StateStore } from '../../hub/src/state/state.js'
import type { TelemetryPoint, TelemetryQuery, TelemetryStore } from '../../hub/src/store/telemetry.js'
import type { PointWriter } from '../../hub/src/store/writer.js'
import type { LiveStreams } from '../../hub/src/stream/live.js'

/** The telemetry store without InfluxDB: `points` is what every history query finds. */
export class FakeTelemetryStore {
  points: TelemetryPoint[] = []
  queries: TelemetryQuery[] = []
  up = true
  async ping (): Promise<boolean> { return this.up }
  async history (q: TelemetryQuery): Promise<TelemetryPoint[]> {
    this.queries.push(q)
    if (!this.up) throw new Error('influxd is down')
    return this.points.filter((p) => Date.parse(p.ts) >= q.from.getTime() && Date.parse(p.ts) <= q.to.getTime()).slice(0, q.limit)
  }
}

/** Commands that are never delivered: each is answered `pending` and kept. */
function fakeCommands () {
  const sent: CommandRecord[] = []
  return {
    sent,
    desired: () => new Map(),
    async send (ctx: { id: string }, ownerId: string, request: CommandRecord['request']): Promise<CommandRecord> {
      const record: CommandRecord = { id: `cmd-${sent.length + 1}`, deviceId: ctx.id, ownerId, origin: 'api', request, status: 'pending', error: null, state: null, createdAt: Date.now(), sentAt: null, ackedAt: null, queuedUntil: Date.now() + 3_600_000 }
      sent.push(record)
      return record
    },
    async get (deviceId: string, id: string) { return sent.find((c) => c.deviceId === deviceId && c.id === id) ?? null },
    async recent (deviceId: string, limit: number) { return sent.filter((c) => c.deviceId === deviceId).slice(-limit).reverse() },
  }
}

/** Schedules kept in memory, never armed. */
function fakeScheduler () {
  const schedules: Schedule[] = []
  return {
    async create (ownerId: string, device: { id: string }, input: Omit<Schedule, 'id' | 'ownerId' | 'deviceId' | 'createdAt'>): Promise<Schedule> {
      const s: Schedule = { id: `sch-${schedules.length + 1}`, ownerId, deviceId: device.id, cron: input.cron, timezone: input.timezone, command: input.command, paused: input.paused, createdAt: new Date().toISOString() }
      schedules.push(s)
      return s
    },
    async list (ownerId: string) { return schedules.filter((s) => s.ownerId === ownerId) },
    async get (ownerId: string, id: string) { return schedules.find((s) => s.ownerId === ownerId && s.id === id) ?? null },
    async setPaused (ownerId: string, id: string, paused: boolean) {
      const s = schedules.find((x) => x.ownerId === ownerId && x.id === id)
      if (s) s.paused = paused
      return s ?? null
    },
    async delete (ownerId: string, id: string) {
      const i = schedules.findIndex((x) => x.ownerId === ownerId && x.id === id)
      if (i >= 0) schedules.splice(i, 1)
      return i >= 0
    },
    async runs () { return [] },
    nextRun: () => null,
  }
}

/** Automations kept in memory, never armed. */
function fakeAutomations () {
  const rules: Automation[] = []
  return {
    problem: () => null,
    async create (ownerId: string, _devices: unknown, rule: AutomationDeclaration): Promise<Automation> {
      const a: Automation = { ...rule, id: `aut-${rules.length + 1}`, ownerId, createdAt: new Date().toISOString() }
      rules.push(a)
      return a
    },
    async replace (existing: Automation, _devices: unknown, rule: AutomationDeclaration): Promise<Automation> {
      Object.assign(existing, rule)
      return existing
    },
    async list (ownerId: string) { return rules.filter((a) => a.ownerId === ownerId) },
    async get (ownerId: string, id: string) { return rules.find((a) => a.ownerId === ownerId && a.id === id) ?? null },
    async delete (ownerId: string, id: string) {
      const i = rules.findIndex((a) => a.ownerId === ownerId && a.id === id)
      if (i >= 0) rules.splice(i, 1)
      return i >= 0
    },
    async runs () { return [] },
    suspended: () => null,
  }
}

export interface FakeHubApi {
  app: FastifyInstance
  routes: RouteDef<any, any, any, any>[]
  context: ApiContext
  registry: Registry
  store: FakeTelemetryStore
  inject (opts: InjectOptions & { token?: string }): Promise<LightMyRequestResponse>
  close (): Promise<void>
}

/**
 * The API over a fake context: a real registry in an in-memory PGlite, and
 * fakes for InfluxDB, the writer, the broker-facing services and the live
 * stream. No socket is opened; requests go through `app.inject()`.
 */
export async function fakeHubApi (opts: ApiOptions = {}, shared?: Registry): Promise<FakeHubApi> {
  const registry = shared ?? await openFakeRegistry()
  const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' })
  const directory = new DeviceDirectory(registry)
  const state = new StateStore(registry)
  const store = new FakeTelemetryStore()
  const writer = { stats: { buffered: 0, failedRequests: 0 }, spoolDepth: { points: 0, bytes: 0, segments: 0 }, degraded: false }
  const audit = new AuditLog(registry, log)
  const commands = fakeCommands()
  let context!: ApiContext
  const built = buildApi({
    registry,
    directory,
    state,
    store: store as unknown as TelemetryStore,
    writer: writer as unknown as PointWriter,
    deadLetters: new DeadLetters(),
    metrics: new HubMetrics(),
    log,
    commands,
    audit,
    makerName: async (id) => (await registry.getMaker(id))?.name ?? id,
  }, log, {
    ...opts,
    extraRoutes: (api) => {
      context = api
      return [
        ...commandRoutes(api, commands as unknown as CommandService),
        ...presenceRoutes(api, { history: async () => ({ onlineAtStart: false, changes: [] }) } as unknown as PresenceMonitor),
        ...scheduleRoutes(api, fakeScheduler() as unknown as Scheduler),
        ...automationRoutes(api, fakeAutomations() as unknown as Automations),
        ...streamRoutes({
          open: (_owner: string, raw: import('node:http').ServerResponse) => {
            raw.writeHead(200, { 'content-type': 'text/event-stream' })
            raw.end('event: ready\ndata: {}\n\n')
          },
        } as unknown as LiveStreams),
        ...(opts.extraRoutes?.(api) ?? []),
      ]
    },
  })
  return {
    app: built.app,
    routes: built.routes,
    context,
    registry,
    store,
    inject: async ({ token, ...rest }) => await built.app.inject({ ...rest, headers: { ...rest.headers, ...(token && { authorization: `Bearer ${token}` }) } }),
    async close () {
      await built.app.close()
      await audit.close()
      await state.close()
      if (!shared) await registry.close()
    },
  }
}

/** A registry in a database of its own on the run's PostgreSQL (which goes, with its databases, when the run ends). */
export async function openFakeRegistry (): Promise<Registry> {
  return await Registry.open((await freshDatabase()).open())
}

/** A maker with a model and `count` devices, and an owner who claimed the first `claimed` of them. */
export async function seedTenant (api: FakeHubApi, name: string, opts: { count?: number, claimed?: number } = {}) {
  const maker = (await api.inject({ method: 'POST', url: '/v1/makers', payload: { name } })).json()
  const model = (await api.inject({ method: 'POST', url: '/v1/models', token: maker.token, payload: { name: `${name}-thermo`, capabilities: ['temperature', 'power'] } })).json()
  const devices = (await api.inject({ method: 'POST', url: '/v1/devices', token: maker.token, payload: { model: model.id, count: opts.count ?? 2 } })).json().devices as Array<{ id: string, secret: string, claimCode: string }>
  const owner = (await api.inject({ method: 'POST', url: '/v1/owners', payload: { email: `${name.toLowerCase().replace(/\W/g, '')}@example.com`, password: 'correct horse battery' } })).json()
  for (const d of devices.slice(0, opts.claimed ?? 1)) {
    const claimed = await api.inject({ method: 'POST', url: '/v1/devices/claim', token: owner.token, payload: { claimCode: d.claimCode } })
    if (claimed.statusCode !== 200) throw new Error(`claim failed: ${claimed.body}`)
  }
  return { makerId: maker.id as string, makerToken: maker.token as string, modelId: model.id as string, ownerId: owner.id as string, ownerToken: owner.token as string, email: owner.email as string, devices }
}
