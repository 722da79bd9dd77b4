import { Writable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import type { SqlClient } from '@trellis/hub'
import { freshDatabase } from '../support/postgres.js'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { hostileBudget, hubTarget, MiB, seatBystander, withBystander } from '../support/hostile.js'

let influx: TestInflux
let stack: TestStack | undefined

beforeAll(async () => { influx = await startTestInflux() })
afterEach(async () => { await stack?.close(); stack = undefined })
afterAll(async () => { await influx?.dispose() })

/** Owners, each with one device, signed up in parallel. */
async function owners (api: ApiClient, count: number) {
  return await Promise.all(Array.from({ length: count }, (_, i) => seedFleet(api, { makerName: `Flood ${i}` })))
}

const perSecond = (deviceId: string) => ({ deviceId, cron: '* * * * * *', command: { set: { power: true } } })

describe('a flood of schedules across many owners', () => {
  it('refuses schedules faster than the minimum interval of 60 s, with the reason, however many owners ask', async () => {
    // The hub's default minimum, which the test stack lowers to 1 s for other tests.
    stack = await startStack({ influxUrl: influx.url, schedules: { minIntervalSeconds: 60 } })
    const api = apiClient(stack.httpUrl)
    const target = hubTarget(stack)
    const bystander = await seatBystander(target)
    const fleets = await owners(api, 5)
    const report = await withBystander(target, bystander, async () => {
      const answers = []
      for (let i = 0; i < 20; i++) {
        for (const f of fleets) answers.push(await api.post('/v1/schedules', perSecond(f.devices[0].id), f.ownerToken))
      }
      return answers
    })
    expect(new Set(report.result.map((a) => a.status))).toEqual(new Set([422]))
    expect(report.result[0].body.error).toEqual({ code: 'INVALID_SCHEDULE', message: 'cron "* * * * * *" fires 1 s apart; schedules may fire at most once every 60 s' })
    expect(report.failures).toBe(0)
    expect(report.p99).toBeLessThan(hostileBudget.p99Ms)
    const everyMinute = await api.post('/v1/schedules', { ...perSecond(fleets[0].devices[0].id), cron: '* * * * *' }, fleets[0].ownerToken)
    expect(everyMinute.status).toBe(201)
  }, 60_000)

  it('holds per-second schedules of many owners to the hub-wide firing rate, records the skips, bounds the runs table and aggregates node-cron warnings', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'warn' }, new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } }))
    // A database of its own, so the runs table can be counted; it goes with the run's server.
    const sql: SqlClient = (await freshDatabase()).open()
    const limits = { minIntervalSeconds: 1, maxFiringsPerMinutePerOwner: 30 * 60, maxFiringsPerSecond: 20, firingBurst: 20, runsKept: 20, maxRunsTotal: 300, cronWarningLogMs: 60_000 }
    stack = await startStack({ influxUrl: influx.url, sql, logger, schedules: limits })
    const api = apiClient(stack.httpUrl)
    const target = hubTarget(stack)
    const bystander = await seatBystander(target)
    const fleets = await owners(api, 6)
    const consoleLines: unknown[] = []
    const saved = { warn: console.warn, error: console.error, info: console.info }
    console.warn = console.error = console.info = (...args: unknown[]) => { consoleLines.push(args) }
    try {
      const report = await withBystander(target, bystander, async () => {
        // 6 owners × 30 per-second schedules: 180 firings a second asked for, 20 allowed.
        const created = await Promise.all(fleets.map(async (f) => {
          const ids: string[] = []
          for (let i = 0; i < 30; i++) {
            const res = await api.post('/v1/schedules', perSecond(f.devices[0].id), f.ownerToken)
            if (res.status !== 201) throw new Error(`schedule ${i} of ${f.ownerId}: ${res.status} ${JSON.stringify(res.body)}`)
            ids.push(res.body.id)
          }
          return ids
        }))
        const start = stack!.hub.control.scheduler.stats()
        const startedAt = Date.now()
        await eventually(() => stack!.hub.control.scheduler.stats(), (s) => s.skipped.hubRate - start.skipped.hubRate > 600, { what: '600 firings skipped', timeoutMs: 20_000 })
        return { created: created.flat(), start, end: stack!.hub.control.scheduler.stats(), seconds: (Date.now() - startedAt) / 1000 }
      })
      const { created, start, end, seconds } = report.result
      // 180 per-second schedules fire 180 times a second; the hub sends at most 20 a second, after a burst of 20.
      expect(end.fired - start.fired).toBeLessThanOrEqual(20 + 20 * Math.ceil(seconds + 1))
      expect(report.failures).toBe(0)
      expect(report.p99).toBeLessThan(hostileBudget.p99Ms)
      expect(report.rssDelta).toBeLessThan(200 * MiB)

      // A skip is recorded in the schedule's runs with the reason and how many; one row, not one per firing.
      const runs = await eventually(() => api.get(`/v1/schedules/${created[created.length - 1]}/runs`, fleets[5].ownerToken),
        (r) => r.body.runs?.some((run: { outcome: string }) => run.outcome === 'skipped'), { what: 'a skipped run' })
      const skipped = runs.body.runs.find((run: { outcome: string }) => run.outcome === 'skipped')
      expect(skipped).toMatchObject({ status: 'skipped', commandId: null, error: expect.stringMatching(/^\d+ firings? skipped since .*: the hub's limit of 20 schedule firings a second was reached$/) })

      // The runs table stays within its bound (1.1 × maxRunsTotal between prunes).
      const [{ n }] = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM schedule_runs')
      expect(n).toBeLessThanOrEqual(330)

      // A stalled event loop makes node-cron miss every schedule's firings: counted, and at most one log line.
      const missedBefore = stack.hub.control.scheduler.stats().missed
      const stallUntil = Date.now() + 2_500
      while (Date.now() < stallUntil) { /* the event loop, stalled on purpose */ }
      await eventually(() => stack!.hub.control.scheduler.stats().missed, (m) => m - missedBefore >= 180, { what: 'missed firings counted' })
      expect(consoleLines).toEqual([])
      expect(lines.filter((l) => l.includes('missed')).length).toBeLessThanOrEqual(1)

      // One owner's quota of firings a minute holds at creation too: 30 per-second schedules are 1800 a minute.
      const more = await api.post('/v1/schedules', perSecond(fleets[0].devices[0].id), fleets[0].ownerToken)
      expect(more.status).toBe(422)
      expect(more.body.error.message).toBe('with cron "* * * * * *" your schedules could fire 1860 times in a minute; at most 1800: make one fire less often or delete one')
    } finally {
      Object.assign(console, saved)
    }
  }, 120_000)
})
