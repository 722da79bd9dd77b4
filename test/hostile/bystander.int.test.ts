import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { hostileBudget, hubTarget, MiB, seatBystander, withBystander, type Bystander } from '../support/hostile.js'
import { hostileAbuses, testScale, type HostileContext } from './abuses.js'

// Issue #17: every finding's abuse, short, against one hub in a process of its own (so its RSS is its own),
// while a second owner reads its device. The long variant is `npm run bench -- abuse`.
let influx: TestInflux
let hub: HubProcess
let dataDir: string
let bystander: Bystander

/** Each abuse runs at most this long; its set-up, as long again. */
const abuseSeconds = 4

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hostile-'))
  hub = await startHubProcess({ influxUrl: influx.url, dataDir }, 60_000)
  bystander = await seatBystander(hubTarget(hub))
}, 90_000)

afterAll(async () => {
  await hub?.kill('SIGKILL')
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('a hostile tenant costs a bystander little', () => {
  for (const abuse of hostileAbuses) {
    it(`keeps a second owner's reads within budget and the hub's RSS within ${abuse.rssBoundMiB} MiB during: ${abuse.name} (finding ${abuse.finding})`, async () => {
      const ctx = (seconds: number): HostileContext => ({ httpUrl: hub.httpUrl, mqttUrl: hub.mqttUrl, scale: testScale, deadline: Date.now() + seconds * 1000, progress: () => {} })
      const state = abuse.prepare ? await abuse.prepare(ctx(abuseSeconds * 2)) : undefined
      const report = await withBystander(hubTarget(hub), bystander, async () => await abuse.run(ctx(abuseSeconds), state))
      const figures = `${report.result}; bystander p50 ${report.p50.toFixed(1)} ms, p99 ${report.p99.toFixed(1)} ms over ${report.samples} reads; RSS +${(report.rssDelta / MiB).toFixed(1)} MiB`
      if (process.env.HOSTILE_REPORT) console.log(`${abuse.name}: ${figures}`)
      expect(hub.child.exitCode, figures).toBeNull()
      if (abuse.testExpects) expect(report.result).toMatch(abuse.testExpects)
      expect(report.failures, figures).toBe(0)
      expect(report.p99, figures).toBeLessThan(hostileBudget.p99Ms)
      expect(report.rssDelta, figures).toBeLessThan(abuse.rssBoundMiB * MiB)
    }, 60_000)
  }
})
