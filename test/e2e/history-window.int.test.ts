import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
const logLines: string[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  const sink = new Writable({ write (chunk, _enc, done) { logLines.push(String(chunk)); done() } })
  // Credentials in the URL, as an operator sets INFLUX_URL: influxd here has no auth, so they are only carried.
  const u = new URL(influx.url)
  u.username = 'hub'
  u.password = 'influx-password-7'
  stack = await startStack({ influxUrl: u.toString().replace(/\/$/, ''), logger: pino({ level: 'debug' }, sink) })
  api = apiClient(stack.httpUrl)
})

afterAll(async () => {
  await stack?.close()
  await influx?.dispose()
})

describe('history windows beyond what InfluxDB can hold', () => {
  it('answers 400 with the allowed range, and logs no credentials or request headers', async () => {
    const fleet = await seedFleet(api)
    const [d] = fleet.devices
    for (const [from, to] of [['1000-01-01T00:00:00Z', '2020-01-01T00:00:00Z'], ['2020-01-01T00:00:00Z', '9999-01-01T00:00:00Z']]) {
      const res = await api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=${from}&to=${to}`, fleet.ownerToken)
      expect(res.status).toBe(400)
      expect(res.body.error.message).toMatch(/must be between 1677-09-22T00:00:00.000Z and 2262-04-10T00:00:00.000Z/)
    }
    const presence = await api.get(`/v1/devices/${d.id}/presence?from=1000-01-01T00:00:00Z`, fleet.ownerToken)
    expect(presence.status).toBe(400)
    const ok = await api.get(`/v1/devices/${d.id}/telemetry?capability=temperature&from=1970-01-01T00:00:00Z`, fleet.ownerToken)
    expect(ok.status).toBe(200)
    const log = logLines.join('')
    expect(log).not.toMatch(/influx-password-7|authorization|Basic /i)
    expect(Math.max(0, ...logLines.map((l) => l.length))).toBeLessThan(4096)
  })

  it('reports a query InfluxDB refuses as the caller\'s mistake with InfluxDB\'s reason, not as storage down', async () => {
    const err = await stack.hub.store.query('SELECT FROM WHERE').then(() => null, (e: Error) => e)
    expect(err?.name).toBe('QueryRefused')
    expect(err?.message).toMatch(/^InfluxDB refused the query: error parsing query/)
    expect(err?.message.length).toBeLessThan(400)
  })
})
