/**
 * `npm run bench -- abuse`: the long variant of the hostile-tenant suite.
 *
 * For each abuse, a fresh hub in a process of its own (so its RSS is its
 * own), a bystander owner reading `GET /v1/devices/{id}` first at rest, then
 * while the abuse runs (test/support/hostile.ts). The table compares the two
 * and checks the bound, 50 ms p99. Every abuse is bounded in count
 * and time; everything listens on 127.0.0.1.
 *
 * Abuses are data: `{ name, summary, limits?, run }`. Another area adds its
 * own with `registerAbuse(...)` from a module listed in `abuseModules` below,
 * or by adding to `abuses`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startBenchInflux } from './lib/stack.js'
import { fmtMiB, fmtNum, table } from './lib/stats.js'
import { machine } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'
import { startHubProcess, type HubProcessOptions } from '../test/support/hub-process.js'
import { apiClient, seedFleet } from '../test/support/api.js'
import { bystanderAtRest, hostileBudget, hubTarget, seatBystander, withBystander } from '../test/support/hostile.js'
import { benchScale, hostileAbuses } from '../test/hostile/abuses.js'
import startTestPostgres from '../test/support/postgres.js'

export const abuseOptions = {
  only: { default: '', help: 'Run only the abuses whose names contain this (comma-separated).' },
  seconds: { default: 70, help: 'Longest time one abuse runs, in seconds (its preparation: four times that).' },
  owners: { default: 19, help: 'Owners the flood abuses sign up.' },
  'per-owner': { default: 100, help: 'Schedules each flooding owner creates (the hub\'s default cap is 100).' },
  'rest-samples': { default: 300, help: 'Bystander reads at rest before each abuse.' },
} satisfies OptionSpecs

export type AbuseOptions = Options<typeof abuseOptions>

export interface AbuseContext {
  httpUrl: string
  mqttUrl: string
  opts: AbuseOptions
  /** Until then the abuse may run; it must stop by itself. */
  deadline: number
  /** A progress line on stderr. */
  progress (line: string): void
}

export interface Abuse<P = unknown> {
  name: string
  summary: string
  /** Hub limits this abuse runs under (e.g. a lowered minimum interval); default the hub's own. */
  limits?: HubProcessOptions['limits']
  /**
   * What the abuse sets up first, not measured (e.g. creating the schedules that later fire);
   * its note goes to the table. Default none.
   */
  prepare? (ctx: AbuseContext): Promise<{ state: P, note: string }>
  /** Runs the abuse, measured; returns a short note for the table (what it did, what the hub answered). */
  run (ctx: AbuseContext, state: P): Promise<string>
}

export const abuses: Array<Abuse<any>> = []

export function registerAbuse<P> (abuse: Abuse<P>): void {
  abuses.push(abuse)
}

/** Modules that call registerAbuse on import; other areas add theirs here. */
const abuseModules: string[] = []

async function postSchedule (httpUrl: string, token: string, body: object): Promise<number> {
  const res = await fetch(`${httpUrl}/v1/schedules`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  }).catch(() => null)
  if (!res) return 0
  await res.arrayBuffer()
  return res.status
}

function tally (statuses: number[]): string {
  const counts = new Map<number, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].map(([s, n]) => `${n}× ${s || 'no answer'}`).join(', ')
}

/** Owners with one device each, signed up a few at a time. */
async function signUpOwners (httpUrl: string, count: number, progress: (l: string) => void) {
  const api = apiClient(httpUrl)
  const fleets = []
  for (let i = 0; i < count; i += 5) {
    fleets.push(...await Promise.all(Array.from({ length: Math.min(5, count - i) }, (_, j) => seedFleet(api, { makerName: `Abuser ${i + j}` }))))
  }
  progress(`${count} owners signed up`)
  return fleets
}

/** Each owner creates up to perOwner schedules of `cron(i)`, owners in parallel, until the deadline. */
async function flood (ctx: AbuseContext, cron: (i: number) => string): Promise<number[]> {
  const fleets = await signUpOwners(ctx.httpUrl, ctx.opts.owners, ctx.progress)
  const statuses: number[] = []
  await Promise.all(fleets.map(async (f) => {
    for (let i = 0; i < ctx.opts['per-owner'] && Date.now() < ctx.deadline; i++) {
      statuses.push(await postSchedule(ctx.httpUrl, f.ownerToken, { deviceId: f.devices[0].id, cron: cron(i), command: { set: { power: true } } }))
    }
  }))
  ctx.progress(`schedules: ${tally(statuses)}`)
  return statuses
}

/** Lets created schedules fire until the deadline, reporting every few seconds. */
async function letThemFire (ctx: AbuseContext, seconds: number): Promise<void> {
  const until = Math.min(ctx.deadline, Date.now() + seconds * 1000)
  while (Date.now() < until) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Math.max(0, until - Date.now()))))
}

// Every finding's abuse of the hostile-tenant suite (test/hostile/abuses.ts), at bench scale.
for (const h of hostileAbuses) {
  const scaled = (ctx: AbuseContext) => ({ ...ctx, scale: benchScale })
  registerAbuse({
    name: h.name,
    summary: `finding ${h.finding}: ${h.summary}`,
    prepare: h.prepare && (async (ctx) => ({ state: await h.prepare!(scaled(ctx)), note: '' })),
    run: async (ctx, state) => await h.run(scaled(ctx), state),
  })
}

// The floods create their schedules unmeasured (prepare), then measure while they fire (run): creating them is a
// request flood, which per-account request limits bound, not the scheduler.
registerAbuse({
  name: 'schedule flood: firing',
  summary: 'many owners each create their cap of schedules, all set to fire in the same second of every minute; measured while they fire',
  async prepare (ctx) {
    // Six fields, seconds first; the second is read once created: they all fire in the same second, every minute.
    const statuses = await flood(ctx, () => '0 * * * * *')
    return { state: null, note: tally(statuses) }
  },
  async run (ctx) {
    await letThemFire(ctx, 65)
    return 'every minute at :00'
  },
})

registerAbuse({
  name: 'schedule flood, all expressions distinct: firing',
  summary: 'as the schedule flood, but every schedule\'s expression is spelled differently, so none share a node-cron task',
  async prepare (ctx) {
    // "0 a-59,0-a b-23,0-b * * *" fires every minute at second 0, in 60 × 24 spellings.
    let n = 0
    const statuses = await flood(ctx, () => { const a = n % 60; const b = Math.floor(n / 60) % 24; n++; return `0 ${a}-59,0-${a} ${b}-23,0-${b} * * *` })
    return { state: null, note: tally(statuses) }
  },
  async run (ctx) {
    await letThemFire(ctx, 65)
    return 'every minute at :00'
  },
})

registerAbuse({
  name: 'per-second flood (minimum lowered to 1 s): firing',
  summary: 'the issue\'s flood: many owners, per-second schedules, on a hub whose operator allowed them; the hub-wide firing rate holds',
  limits: { schedules: { minIntervalSeconds: 1, maxFiringsPerMinutePerOwner: 60 * 100 } },
  async prepare (ctx) {
    return { state: null, note: tally(await flood(ctx, () => '* * * * * *')) }
  },
  async run (ctx) {
    await letThemFire(ctx, 20)
    return 'every second'
  },
})

registerAbuse({
  name: 'per-second schedules at the default minimum: requests',
  summary: 'many owners ask for per-second schedules as fast as they can; the 60 s minimum refuses them; measured while they ask',
  async run (ctx) {
    return tally(await flood(ctx, () => '* * * * * *'))
  },
})

export async function abuse (opts: AbuseOptions): Promise<void> {
  for (const m of abuseModules) await import(m)
  const wanted = opts.only ? opts.only.split(',').map((s) => s.trim().toLowerCase()) : []
  const chosen = abuses.filter((a) => wanted.length === 0 || wanted.some((w) => a.name.toLowerCase().includes(w)))
  console.error(`abuse bench on ${machine()}: ${chosen.map((a) => a.name).join('; ')}`)
  const influx = await startBenchInflux()
  // The tests' managed PostgreSQL: each hub process gets a database of its own on it (startHubProcess).
  const stopPostgres = await startTestPostgres()
  const rows: string[][] = []
  try {
    for (const a of chosen) {
      const progress = (line: string) => console.error(`  [${a.name}] ${line}`)
      const dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-bench-abuse-'))
      // A loaded machine can take long to start a hub; one abuse that cannot run does not end the others.
      const hub = await startHubProcess({ influxUrl: influx.url, dataDir, limits: a.limits }, 120_000).catch((err: Error) => err)
      if (hub instanceof Error) {
        progress(hub.message)
        rows.push([a.name, '-', '-', '-', '-', '-', '-', '-', '-', `not run: ${hub.message.split('\n')[0]}`])
        await rm(dataDir, { recursive: true, force: true })
        continue
      }
      try {
        const target = hubTarget(hub)
        const bystander = await seatBystander(target)
        const rest = await bystanderAtRest(target, bystander, opts['rest-samples'])
        progress(`at rest: p50 ${fmtNum(rest.p50)} ms, p99 ${fmtNum(rest.p99)} ms, RSS ${fmtMiB(rest.rssPeak)}`)
        const context = (seconds: number): AbuseContext => ({ httpUrl: hub.httpUrl, mqttUrl: hub.mqttUrl, opts, deadline: Date.now() + seconds * 1000, progress })
        // Preparing is bounded like the abuse, with room for sign-ups on a slow machine.
        const prepared = a.prepare ? await a.prepare(context(opts.seconds * 4)) : { state: null, note: '' }
        // An abuse that throws (the hub gave the abuser what it must not) is a row saying so, not the end of the run.
        const under = await withBystander(target, bystander, async () => await a.run(context(opts.seconds), prepared.state).catch((err: Error) => `FAILED: ${err.message.split('\n')[0]}`))
        if (prepared.note) under.result = `${prepared.note}; ${under.result}`
        progress(`under abuse: p50 ${fmtNum(under.p50)} ms, p99 ${fmtNum(under.p99)} ms, ${under.failures} failed reads, RSS ${fmtMiB(under.rssBefore)} → peak ${fmtMiB(under.rssPeak)}`)
        const alive = hub.child.exitCode === null && hub.child.signalCode === null
        rows.push([
          a.name,
          fmtNum(rest.p50), fmtNum(rest.p99),
          fmtNum(under.p50), fmtNum(under.p99), String(under.failures),
          fmtMiB(under.rssBefore), fmtMiB(under.rssPeak),
          under.p99 <= hostileBudget.strictP99Ms && under.failures === 0 && alive && !under.result.includes('FAILED') ? 'yes' : 'NO',
          alive ? under.result : `hub died (${hub.child.exitCode ?? hub.child.signalCode}); ${under.result}`,
        ])
      } catch (err) {
        progress(`not measured: ${(err as Error).message}`)
        rows.push([a.name, '-', '-', '-', '-', '-', '-', '-', 'NO', `not measured: ${(err as Error).message.split('\n')[0]}`])
      } finally {
        await hub.kill('SIGKILL')
        await rm(dataDir, { recursive: true, force: true })
      }
    }
  } finally {
    await stopPostgres()
    await influx.dispose()
  }
  console.log(table(['abuse', 'rest p50 ms', 'rest p99 ms', 'p50 ms', 'p99 ms', 'failed reads', 'hub RSS before', 'hub RSS peak', `p99 ≤ ${hostileBudget.strictP99Ms} ms`, 'what the abuser got'], rows))
}
