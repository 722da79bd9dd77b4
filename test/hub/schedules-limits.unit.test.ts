import { afterEach, describe, expect, it } from 'vitest'
import { Scheduler, type SchedulerOptions } from '../../hub/src/schedules/scheduler.js'
import type { Schedule, ScheduleStore } from '../../hub/src/schedules/schedule-store.js'
import { testLogger } from '../support/stack.js'
import { eventually } from '../support/wait.js'

interface RecordedRun { scheduleId: string, outcome: string, error: string | null }

/** A store holding schedules made under older, looser limits, and the runs written since. */
function fakeStore (schedules: Schedule[]) {
  const runs: RecordedRun[] = []
  const store = {
    all: async () => schedules,
    recordRun: async (scheduleId: string, run: { outcome: string, error: string | null }) => { runs.push({ scheduleId, outcome: run.outcome, error: run.error }) },
    pruneRuns: async () => {},
    pruneAllRuns: async () => {},
    delete: async () => true,
    setPaused: async (_owner: string, id: string, paused: boolean) => ({ ...schedules.find((x) => x.id === id)!, paused }),
  }
  return { store: store as unknown as ScheduleStore, runs }
}

const perSecond = (i: number, ownerId: string): Schedule => ({
  id: `sch_${ownerId}_${i}`, ownerId, deviceId: `dev_${ownerId}`, cron: '* * * * * *', timezone: 'UTC', command: { set: { power: true } }, paused: false, createdAt: '',
})

let scheduler: Scheduler | undefined
afterEach(() => { scheduler?.close(); scheduler = undefined })

async function start (schedules: Schedule[], limits: Partial<SchedulerOptions>) {
  const { store, runs } = fakeStore(schedules)
  let sent = 0
  scheduler = await Scheduler.start({
    store,
    commands: { send: async () => ({ id: `cmd_${++sent}` }) } as never,
    directory: { get: async (id: string) => ({ id, ownerId: id.slice(4) }) } as never,
    log: testLogger(),
    ...limits,
  })
  return { runs, sent: () => sent }
}

describe('the scheduler\'s run-time quotas', () => {
  it('skips an owner\'s firings past their firings a minute, and writes the skips as one run per schedule with the count and reason', async () => {
    // 10 per-second schedules restored from before the quota: 600 firings a minute asked for, 5 allowed.
    const { runs, sent } = await start(Array.from({ length: 10 }, (_, i) => perSecond(i, 'alice')), { maxFiringsPerMinutePerOwner: 5, minIntervalSeconds: 1 })
    const stats = await eventually(() => scheduler!.stats(), (s) => s.skipped.ownerRate >= 10, { what: 'owner-rate skips', timeoutMs: 15_000 })
    // A minute boundary may fall within the test: two windows at most.
    expect(stats.fired).toBeLessThanOrEqual(5 * 2)
    expect(sent()).toBe(stats.fired)
    const skipped = runs.filter((r) => r.outcome === 'skipped')
    expect(skipped.length).toBeGreaterThan(0)
    // At most one skip record per schedule within skipRecordMs (60 s).
    expect(new Set(skipped.map((r) => r.scheduleId)).size).toBe(skipped.length)
    expect(skipped[0].error).toMatch(/^\d+ firings? skipped since .*: your limit of 5 schedule firings a minute was reached$/)
  }, 20_000)

  it('holds every owner together to the hub-wide rate', async () => {
    const owners = ['a', 'b', 'c', 'd']
    const { runs } = await start(owners.flatMap((o) => Array.from({ length: 10 }, (_, i) => perSecond(i, o))), { maxFiringsPerSecond: 5, firingBurst: 5, minIntervalSeconds: 1 })
    const t0 = Date.now()
    const stats = await eventually(() => scheduler!.stats(), (s) => s.skipped.hubRate >= 100, { what: 'hub-rate skips', timeoutMs: 15_000 })
    const seconds = (Date.now() - t0) / 1000
    expect(stats.fired).toBeLessThanOrEqual(5 + 5 * Math.ceil(seconds + 1))
    expect(runs.some((r) => r.outcome === 'skipped' && r.error!.endsWith("the hub's limit of 5 schedule firings a second was reached"))).toBe(true)
  }, 20_000)

  it('fires schedules that share an expression from one timer, and keeps it while one of them is armed', async () => {
    const { runs } = await start([perSecond(0, 'a'), perSecond(1, 'a'), perSecond(0, 'b')], { minIntervalSeconds: 1 })
    await eventually(() => new Set(runs.map((r) => r.scheduleId)).size, (n) => n === 3, { what: 'all three fired' })
    expect(scheduler!.nextRun('sch_a_0')).toEqual(scheduler!.nextRun('sch_b_0'))
    await scheduler!.delete('a', 'sch_a_0')
    await scheduler!.setPaused('a', 'sch_a_1', true)
    expect(scheduler!.nextRun('sch_a_0')).toBeNull()
    expect(scheduler!.nextRun('sch_a_1')).toBeNull()
    const since = runs.length
    await eventually(() => runs.slice(since), (later) => later.filter((r) => r.scheduleId === 'sch_b_0').length >= 2, { what: 'b fired twice more' })
    expect(runs.slice(since).some((r) => r.scheduleId !== 'sch_b_0')).toBe(false)
  }, 20_000)
})
