import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkValue, resolveCapabilities } from '@trellis/device-sdk'
import { PointWriter, Spool, TelemetryStore, toLine } from '@trellis/hub'
import { influxQuery, startTestInflux, type TestInflux } from '../../support/influx.js'
import { hostileString } from '../../support/strings.js'
import { nextEvent } from '../../support/wait.js'

const [firmware] = resolveCapabilities(['firmwareVersion'])
let influx: TestInflux
let dir: string
beforeAll(async () => {
  influx = await startTestInflux()
  dir = mkdtempSync(path.join(tmpdir(), 'trellis-strings-'))
})
afterAll(async () => {
  await influx?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('string readings in a real InfluxDB', () => {
  it('come back unchanged after the spool and a replay into influxd, every one the contract accepts', async () => {
    const edge = ['', ' ', '\\', '\\\\', '"', '\\"', 'a\\', '\'', 'v1.0 "beta", x=1', 'é😀\u2028', 'x'.repeat(256)]
    const generated = fc.sample(hostileString, { numRuns: 400, seed: 11 })
    const accepted = [...edge, ...generated].filter((s) => checkValue(firmware, s, 'x') === null)
    expect(accepted.length).toBeGreaterThan(100)
    const spool = Spool.open({ dir, fsync: false })
    for (let i = 0; i < accepted.length; i += 25) {
      const batch = accepted.slice(i, i + 25).map((value, j) => toLine({ measurement: 'firmwareVersion', device: `s${i + j}`, model: 'm', maker: 'k', value, ts: 1_700_000_000_000 }))
      expect(spool.append(batch)).toBe(true)
    }
    const store = new TelemetryStore(influx.url)
    await store.ensureSchema()
    // Replay is how spooled readings reach InfluxDB: a new writer replays what it finds first thing.
    const writer = new PointWriter({ url: influx.url, spool })
    await nextEvent(writer, 'drained', () => true, 20_000)
    await writer.close()
    expect(writer.stats.rejected).toBe(0)
    const rows = await influxQuery(influx.url, 'SELECT "value" FROM "firmwareVersion" GROUP BY "device"')
    const stored = new Map(rows.map((r) => [r.device as string, r.value]))
    expect(stored.size).toBe(accepted.length)
    accepted.forEach((value, i) => expect(stored.get(`s${i}`), `s${i}: ${JSON.stringify(value)}`).toBe(value))
    const [served] = await store.history({ deviceId: 's4', capability: 'firmwareVersion', kind: 'string', from: new Date(1_699_999_999_000), to: new Date(1_700_000_001_000), limit: 1 })
    expect(served.value).toBe(accepted[4])
    store.close()
  })
})
