import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PointWriter, type Point } from '@trellis/hub'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
const writers: PointWriter[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await Promise.all(writers.map((w) => w.close()))
  await stack?.close()
  await influx?.dispose()
})

const write = async (writer: PointWriter, points: Point[]) => await new Promise<void>((resolve, reject) => {
  writer.write(points, (err) => err ? reject(err) : resolve())
})

async function query (q: string, db = 'trellis') {
  return await influxQuery(influx.url, q, db)
}

describe('InfluxDB refuses some points of a batch', () => {
  it('stores the rest of a batch that hits a field type conflict and dead-letters only the offending point with InfluxDB\'s message', async () => {
    const fleet = await seedFleet(api, { count: 2 })
    const [a, b] = fleet.devices.map((d) => d.id)
    const ts = Date.now() - 60_000
    const point = (device: string, measurement: string, value: Point['value'], at = ts): Point => ({ measurement, device, model: fleet.modelId, maker: fleet.makerId, value, ts: at })
    const { writer } = stack.hub
    await write(writer, [point(a, 'temperature', 20)])
    const before = { ...writer.stats }

    // A string where InfluxDB already holds floats: the middle point conflicts.
    await write(writer, [point(a, 'temperature', 21, ts + 1000), point(b, 'temperature', 'hot', ts + 1000), point(a, 'humidity', 40), point(b, 'humidity', 41)])

    const temperatures = await query(`SELECT "value", "device" FROM "temperature" WHERE "maker" = '${fleet.makerId}'`)
    expect(temperatures.map((r) => [r.device, r.value])).toEqual([[a, 20], [a, 21]])
    const humidity = await query(`SELECT count("value") FROM "humidity" WHERE "maker" = '${fleet.makerId}'`)
    expect(humidity[0].count).toBe(2)

    const rejections = await api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)
    expect(rejections.status).toBe(200)
    expect(rejections.body.rejections).toHaveLength(1)
    expect(rejections.body.rejections[0]).toMatchObject({ deviceId: b, topic: `devices/${b}/telemetry` })
    expect(rejections.body.rejections[0].reason).toMatch(/field type conflict.*"temperature".*is type string, already exists as type float/)
    // The device is claimed: its maker does not see the line's values (docs/makers.md, Consent); the hub keeps them.
    expect(rejections.body.rejections[0].payload).toContain('withheld')
    expect(stack.hub.deadLetters.forModel(fleet.modelId)[0].payload).toContain('value="hot"')
    // A 4xx is final: not retried, not spooled.
    expect(writer.stats.rejected - before.rejected).toBe(1)
    expect(writer.stats.failedRequests).toBe(before.failedRequests)
    expect(writer.stats.spooled).toBe(0)
  })

  it('pins several refusals in one large batch to their lines and stores everything else', async () => {
    const fleet = await seedFleet(api, { count: 1 })
    const device = fleet.devices[0].id
    const ts = Date.now() - 600_000
    const { writer } = stack.hub
    await write(writer, [{ measurement: 'co2', device, model: fleet.modelId, maker: fleet.makerId, value: 400, ts }])
    const bad = new Set([17, 1234, 2999])
    const points: Point[] = Array.from({ length: 3000 }, (_, i) => ({
      measurement: 'co2', device, model: fleet.modelId, maker: fleet.makerId, value: bad.has(i) ? true : 400 + (i % 50), ts: ts + 1 + i,
    }))
    const refused: string[] = []
    const onRejected = (lines: string[]) => refused.push(...lines)
    writer.on('rejected', onRejected)
    await write(writer, points)
    writer.off('rejected', onRejected)
    expect(refused).toHaveLength(3)
    expect(refused.every((l) => l.includes('value=true'))).toBe(true)
    const [{ count }] = await query(`SELECT count("value") FROM "co2" WHERE "device" = '${device}'`)
    expect(count).toBe(1 + 3000 - 3)
  })

  it('dead-letters points beyond the retention policy and stores the others', async () => {
    await query('CREATE DATABASE "trellis_short" WITH DURATION 1h NAME "hour"')
    const writer = new PointWriter({ url: influx.url, database: 'trellis_short', flushIntervalMs: 10 })
    writers.push(writer)
    const refused: Array<[string[], string]> = []
    writer.on('rejected', (lines: string[], reason: string) => refused.push([lines, reason]))
    const now = Date.now()
    const p = (device: string, ts: number): Point => ({ measurement: 'temperature', device, model: 'md-x', maker: 'mk-x', value: 20, ts })
    await write(writer, [p('dev-recent', now - 1000), p('dev-ancient', now - 3 * 3_600_000), p('dev-recent2', now - 2000)])
    expect(refused).toHaveLength(1)
    expect(refused[0][0]).toHaveLength(1)
    expect(refused[0][0][0]).toContain('device=dev-ancient')
    expect(refused[0][1]).toMatch(/points beyond retention policy/)
    const [{ count }] = await query('SELECT count("value") FROM "temperature"', 'trellis_short')
    expect(count).toBe(2)
  })
})

describe('the tag cardinality guard', () => {
  it('refuses points of a maker\'s devices beyond its quota before InfluxDB sees them, and only that maker\'s', async () => {
    const writer = new PointWriter({ url: influx.url, database: 'trellis', flushIntervalMs: 10, cardinality: { maxDevicesPerMaker: 3 } })
    writers.push(writer)
    const refused: Array<[string[], string]> = []
    writer.on('rejected', (lines: string[], reason: string) => refused.push([lines, reason]))
    const ts = Date.now() - 5000
    const p = (maker: string, device: string): Point => ({ measurement: 'illuminance', device, model: 'md-g', maker, value: 100, ts })
    const greedy = Array.from({ length: 6 }, (_, i) => p('mk-greedy', `dev-greedy-${i}`))
    const modest = [p('mk-modest', 'dev-modest-0'), p('mk-modest', 'dev-modest-1')]
    await write(writer, [...greedy, ...modest])
    // A device already admitted keeps reporting.
    await write(writer, [{ ...p('mk-greedy', 'dev-greedy-0'), ts: ts + 1 }])

    expect(refused.flatMap(([lines]) => lines).map((l) => /device=([^,]+)/.exec(l)![1]).sort()).toEqual(['dev-greedy-3', 'dev-greedy-4', 'dev-greedy-5'])
    expect(refused[0][1]).toMatch(/maker mk-greedy already has 3 devices reporting/)
    const rows = await query('SELECT count("value") FROM "illuminance" GROUP BY "maker"')
    expect(rows.map((r) => r.count).sort()).toEqual([2, 4])
  })
})
