import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'
import { metricValue, scrape } from '../support/faults.js'

let influx: TestInflux
let dataDir: string
let hub: HubProcess
const devices: Device[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
  hub = await startHubProcess({ influxUrl: influx.url, dataDir })
})

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close().catch(() => {})))
  await hub?.kill('SIGKILL')
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

/** The ways a payload can be bad, one per kind, each with the reject counter it must land in. */
const badPayloads: Array<{ reason: string, make: (i: number, ts: number) => string }> = [
  { reason: 'malformed', make: (i) => `{"readings": {"temperature": ${i}` },
  { reason: 'oversized', make: (i, ts) => JSON.stringify({ ts, readings: { temperature: 20 }, padding: 'x'.repeat(17_000 + i % 100) }) },
  { reason: 'invalid-reading', make: (i, ts) => JSON.stringify({ ts, readings: { temperature: `hot-${i}` } }) },
  { reason: 'invalid-reading', make: (i, ts) => JSON.stringify({ ts, readings: { flux: i } }) },
  { reason: 'malformed', make: (i) => JSON.stringify([i, 'not', 'telemetry']) },
]

describe('a flood of bad payloads interleaved with valid traffic', () => {
  it('stores every valid reading, counts and dead-letters every bad payload, and keeps hub memory flat', async () => {
    const api = apiClient(hub.httpUrl)
    const deviceCount = 5
    const badPerDevice = 2000
    const validEvery = 5
    const fleet = await seedFleet(api, { count: deviceCount })
    for (const d of fleet.devices) devices.push(await connectDevice({ url: hub.mqttUrl, deviceId: d.id, secret: d.secret }))
    const heap = async () => {
      await hub.collectGarbage()
      return metricValue(await scrape(hub.httpUrl), 'nodejs_heap_size_used_bytes')
    }
    const heapSamples: number[] = [await heap()]
    const base = Date.now() - 3_600_000
    let validSent = 0

    const window = 50
    const traffic = (device: Device, from: number, to: number) => async () => {
      const inFlight = new Set<Promise<void>>()
      for (let i = from; i < to; i++) {
        const ts = base + i * 1000
        const payload = i % validEvery === 0
          ? JSON.stringify({ ts, readings: { temperature: 20 + (i % 7) } })
          // The bad ones so far, not i, picks the kind: every kind gets its equal share.
          : badPayloads[(i - Math.floor(i / validEvery) - 1) % badPayloads.length].make(i, ts)
        if (i % validEvery === 0) validSent++
        const p = device.publishRaw(payload)
        inFlight.add(p)
        void p.finally(() => inFlight.delete(p))
        if (inFlight.size >= window) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    }
    // 2500 messages per device (2000 bad, 500 valid), in four rounds to watch the heap between them.
    const perDevice = badPerDevice * validEvery / (validEvery - 1)
    const rounds = 4
    for (let round = 0; round < rounds; round++) {
      const from = round * perDevice / rounds
      await Promise.all(devices.map((device) => traffic(device, from, from + perDevice / rounds)()))
      heapSamples.push(await heap())
    }

    const badTotal = deviceCount * badPerDevice
    const metrics = await eventually(() => scrape(hub.httpUrl), (text) => metricValue(text, 'trellis_dead_letters_total') >= badTotal, { what: `${badTotal} dead letters` })
    expect(metricValue(metrics, 'trellis_dead_letters_total')).toBe(badTotal)
    const byReason = (reason: string) => metricValue(metrics, 'trellis_ingest_rejected_total', `reason="${reason}"`)
    expect(byReason('malformed')).toBe(badTotal * 2 / 5)
    expect(byReason('oversized')).toBe(badTotal / 5)
    expect(byReason('invalid-reading')).toBe(badTotal * 2 / 5)

    expect(validSent).toBe(deviceCount * perDevice / validEvery)
    await eventually(
      async () => (await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`))[0]?.count,
      (n) => n === validSent, { what: `${validSent} valid readings stored` })

    // The maker sees the latest rejections, with reasons; the ring is bounded.
    const rejections = await api.get(`/v1/models/${fleet.modelId}/rejections`, fleet.makerToken)
    expect(rejections.body.rejections).toHaveLength(100)
    const reasons = rejections.body.rejections.map((r: { reason: string }) => r.reason).join('\n')
    expect(reasons).toMatch(/payload is not JSON/)
    expect(reasons).toMatch(/over the 16384-byte limit/)

    // Memory flat: live heap after a full GC, once per quarter of the flood; margins leave room for a noisy machine.
    const [start, ...after] = heapSamples
    console.log(`live heap (MB): start ${mb(start)}, after each quarter of the flood ${after.map(mb).join(', ')}`)
    expect(Math.max(...after)).toBeLessThan(start + 32 * 1024 * 1024)
    expect(after[3]).toBeLessThan(after[0] + 8 * 1024 * 1024)
  })
})

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
