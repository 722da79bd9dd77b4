import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { seedFleet, apiClient } from '../support/api.js'
import { hostileBudget, hubTarget, MiB, seatBystander, withBystander, type Bystander, type HubTarget } from '../support/hostile.js'

// The hub runs in a process of its own: an expression that kills it must fail this test, not the runner.
// influxd belongs to this process, so afterAll stops it whatever became of the hub.
let influx: TestInflux
let dataDir: string
let hub: HubProcess
let target: HubTarget
let bystander: Bystander

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
  hub = await startHubProcess({ influxUrl: influx.url, dataDir })
  target = hubTarget(hub)
  bystander = await seatBystander(target)
})

afterAll(async () => {
  await hub?.kill('SIGKILL')
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

/** POST /v1/schedules with a deadline: a hub that stalls or dies fails the request instead of hanging the test. */
async function postSchedule (token: string, body: object, timeoutMs = 5_000): Promise<{ status: number, body: any, ms: number }> {
  const t0 = performance.now()
  const res = await fetch(`${hub.httpUrl}/v1/schedules`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  return { status: res.status, body: await res.json(), ms: performance.now() - t0 }
}

describe('a cron expression built to explode', () => {
  it('is refused at once with a reason naming the field, and the hub keeps answering others', async () => {
    const abuser = await seedFleet(apiClient(hub.httpUrl))
    const deviceId = abuser.devices[0].id
    const bombs: Array<{ cron: string, field: RegExp }> = [
      { cron: '0-4294967295 * * * *', field: /minute/ },
      { cron: '0-10000000 * * * *', field: /minute/ },
      { cron: '* 0-99999999 * * *', field: /hour/ },
      { cron: '*/1 * 1-4294967295/1 * *', field: /day of month/ },
      { cron: '0 0 * * 0-9999999999', field: /day of week/ },
      { cron: '0-59/0 * * * * *', field: /second/ },
    ]
    const report = await withBystander(target, bystander, async () => {
      const answers = []
      for (const bomb of bombs) answers.push({ ...bomb, ...await postSchedule(abuser.ownerToken, { deviceId, cron: bomb.cron, command: { set: { power: true } } }) })
      return answers
    })
    for (const answer of report.result) {
      expect(answer.status, answer.cron).toBe(422)
      expect(answer.body.error.code).toBe('INVALID_SCHEDULE')
      expect(answer.body.error.message).toMatch(answer.field)
      expect(answer.ms, answer.cron).toBeLessThan(1_000)
    }
    expect(report.failures).toBe(0)
    expect(report.p99).toBeLessThan(hostileBudget.p99Ms)
    expect(report.rssDelta).toBeLessThan(64 * MiB)
    expect(hub.child.exitCode).toBeNull()
    const health = await fetch(`${hub.httpUrl}/healthz`, { signal: AbortSignal.timeout(5_000) })
    expect(health.status).toBe(200)
  })
})
