import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PointWriter, Spool, TelemetryStore, type Point } from '@trellis/hub'
import { influxQuery, influxRequest, startTestInflux, type TestInflux } from '../../support/influx.js'
import { apiClient } from '../../support/api.js'
import { startStack } from '../../support/stack.js'
import { eventually } from '../../support/wait.js'

/** A logger whose lines a test can read. */
function capturedLogger () {
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  return { lines, logger: pino({ level: 'info' }, sink) }
}

const points = (device: string, n: number): Point[] => Array.from({ length: n }, (_, i) =>
  ({ measurement: 'temperature', device, model: 'm', maker: 'k', value: 20 + i, ts: 1_700_000_000_000 + i }))

const withUser = (url: string, user: string, password: string) => {
  const u = new URL(url)
  u.username = user
  u.password = password
  return u.toString().replace(/\/$/, '')
}

const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

describe('an InfluxDB with auth-enabled', () => {
  let influx: TestInflux
  beforeAll(async () => {
    influx = await startTestInflux({ auth: true })
    const admin = influx.admin!
    for (const q of ['CREATE DATABASE trellis', 'CREATE USER "writer" WITH PASSWORD \'writer-secret\'', 'GRANT ALL ON "trellis" TO "writer"']) {
      const res = await influxRequest({ url: influx.url, admin }, 'POST', `/query?q=${encodeURIComponent(q)}`)
      expect(res.status).toBe(200)
    }
  })
  afterAll(async () => { await influx?.dispose() })

  it('takes writes sent with the user and password in INFLUX_URL, and serves them back', async () => {
    const url = withUser(influx.url, 'writer', 'writer-secret')
    const writer = new PointWriter({ url, flushIntervalMs: 5, maxRetryDelayMs: 100 })
    writer.write(points('auth-1', 3))
    await eventually(() => writer.stats.written, (n) => n === 3, { what: 'three points written' })
    await writer.close()
    const rows = await influxQuery({ url: influx.url, admin: influx.admin }, `SELECT "value" FROM "temperature" WHERE "device" = 'auth-1'`)
    expect(rows.map((r) => r.value)).toEqual([20, 21, 22])
    const store = new TelemetryStore(url)
    const history = await store.history({ deviceId: 'auth-1', capability: 'temperature', kind: 'number', from: new Date(1_699_999_999_000), to: new Date(1_700_000_001_000), limit: 10 })
    expect(history.map((p) => p.value)).toEqual([20, 21, 22])
    store.close()
  })

  it('reports refused credentials once as a configuration error and keeps every point in the spool', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'trellis-spool-'))
    dirs.push(dir)
    const { lines, logger } = capturedLogger()
    const spool = Spool.open({ dir, fsync: false })
    const writer = new PointWriter({ url: withUser(influx.url, 'writer', 'not-the-password-42'), flushIntervalMs: 5, maxRetryDelayMs: 20, spool, logger })
    try {
      writer.write(points('auth-2', 4))
      writer.write(points('auth-3', 2))
      await eventually(() => writer.stats.failedRequests, (n) => n >= 4, { what: 'several refused attempts' })
      expect(writer.configError).toMatch(/^InfluxDB answered 401 to POST \/write\?db=trellis: /)
      expect(writer.spoolDepth.points).toBe(6)
      expect(lines.filter((l) => l.includes('refuses this hub\'s credentials'))).toHaveLength(1)
      expect(lines.join('')).not.toMatch(/not-the-password-42|Basic /)
    } finally {
      await writer.close(100)
    }
  })

  it('goes on when CREATE DATABASE is refused, saying so in the log', async () => {
    const { lines, logger } = capturedLogger()
    const store = new TelemetryStore(withUser(influx.url, 'writer', 'writer-secret'))
    const stop = await store.ensureSchemaEventually(logger)
    stop()
    expect(lines.filter((l) => l.includes('refused CREATE DATABASE'))).toHaveLength(1)
    expect(lines.join('')).not.toContain('writer-secret')
    store.close()
  })

  it('shows refused credentials on /healthz as misconfigured', async () => {
    const stack = await startStack({ influxUrl: withUser(influx.url, 'writer', 'not-the-password-42') })
    try {
      stack.hub.writer.write(points('auth-4', 1))
      await eventually(() => stack.hub.writer.configError, (e) => e !== null, { what: 'the configuration error' })
      const health = await apiClient(stack.httpUrl).get('/healthz')
      expect(health.status).toBe(503)
      expect(health.body).toMatchObject({ status: 'misconfigured', influxProblem: expect.stringMatching(/answered 401/) })
      expect(JSON.stringify(health.body)).not.toContain('not-the-password-42')
    } finally {
      await stack.hub.writer.close(100)
      await stack.close()
    }
  })
})

describe('an InfluxDB behind TLS', () => {
  let influx: TestInflux
  beforeAll(async () => { influx = await startTestInflux({ tls: true }) })
  afterAll(async () => { await influx?.dispose() })

  it('takes writes and answers reads over https, trusting the given certificate', async () => {
    expect(influx.url).toMatch(/^https:/)
    const store = new TelemetryStore({ url: influx.url, ca: influx.ca })
    await store.ensureSchema()
    const writer = new PointWriter({ url: influx.url, ca: influx.ca, flushIntervalMs: 5, maxRetryDelayMs: 100 })
    writer.write(points('tls-1', 2))
    await eventually(() => writer.stats.written, (n) => n === 2, { what: 'two points written over https' })
    await writer.close()
    const history = await store.history({ deviceId: 'tls-1', capability: 'temperature', kind: 'number', from: new Date(1_699_999_999_000), to: new Date(1_700_000_001_000), limit: 10 })
    expect(history.map((p) => p.value)).toEqual([20, 21])
    expect(await store.ping()).toBe(true)
    store.close()
  })
})
