import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { metricValue, scrape } from '../support/faults.js'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { eventually } from '../support/wait.js'
import { root } from './process-tree.js'

let influx: TestInflux
let stack: TestStack
let api: ApiClient
let device: Device
let fleet: Awaited<ReturnType<typeof seedFleet>>
let page: string
let releaseAck: () => void

/** `# TYPE name kind` lines of a Prometheus text page. */
function typesOf (text: string): Map<string, string> {
  return new Map(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ').slice(2, 4) as [string, string]))
}

beforeAll(async () => {
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
  fleet = await seedFleet(api, { count: 1 })
  const held = new Promise<void>((resolve) => { releaseAck = resolve })
  device = await connectDevice({
    url: stack.mqttUrl,
    deviceId: fleet.devices[0].id,
    secret: fleet.devices[0].secret,
    // The first command is acked only after the hub gave up on it: a late ack.
    handlers: { power: async () => { await held } },
  })
  await device.report({ temperature: 21.5, humidity: 40 })
  // A refused login and a denied publish, for the broker's counters.
  await connectDevice({ url: stack.mqttUrl, deviceId: fleet.devices[0].id, secret: 'wrong', connectTimeoutMs: 5000 }).catch(() => {})
  await eventually(() => scrape(stack.httpUrl), (t) => metricValue(t, 'trellis_ingest_durable_seconds_count') > 0, { what: 'a batch written to InfluxDB' })
  page = await scrape(stack.httpUrl)
}, 60_000)

afterAll(async () => {
  releaseAck?.()
  await device?.close()
  await stack?.close()
  await influx?.dispose()
})

describe('/metrics follows Prometheus conventions', () => {
  it('types every count since start as a counter named …_total, and nothing else so', () => {
    const types = typesOf(page)
    const trellis = [...types].filter(([name]) => name.startsWith('trellis_'))
    for (const [name, kind] of trellis) {
      if (kind === 'counter') expect(name, `${name} is a counter`).toMatch(/_total$/)
      else expect(name, `${name} is a ${kind}`).not.toMatch(/_total$/)
    }
    for (const name of ['trellis_store_written_points_total', 'trellis_store_failed_requests_total', 'trellis_store_spooled_points_total', 'trellis_store_replayed_points_total',
      'trellis_broker_auth_failures_total', 'trellis_broker_publish_denied_total', 'trellis_broker_subscribe_denied_total', 'trellis_broker_auth_throttled_total',
      'trellis_broker_publish_dropped_total', 'trellis_broker_rate_limit_disconnects_total', 'trellis_broker_oversized_packets_total', 'trellis_broker_queue_dropped_total',
      'trellis_audit_dropped_total']) {
      expect(types.get(name), name).toBe('counter')
    }
    expect(metricValue(page, 'trellis_store_written_points_total')).toBeGreaterThan(0)
    expect(metricValue(page, 'trellis_broker_auth_failures_total')).toBe(1)
  })

  it('has latency histograms for ingest to durable, InfluxDB writes and HTTP by route', async () => {
    const types = typesOf(page)
    expect(types.get('trellis_ingest_durable_seconds')).toBe('histogram')
    expect(types.get('trellis_store_write_seconds')).toBe('histogram')
    expect(types.get('trellis_http_request_duration_seconds')).toBe('histogram')
    expect(metricValue(page, 'trellis_store_write_seconds_count')).toBeGreaterThan(0)
    await api.get('/v1/devices?limit=5', fleet.ownerToken)
    const after = await scrape(stack.httpUrl)
    // By route pattern, never by raw path: one series per route however many devices.
    expect(metricValue(after, 'trellis_http_request_duration_seconds_count', 'method="GET",route="/v1/devices",status_code="200"')).toBeGreaterThanOrEqual(1)
    expect(after).not.toContain(`route="/v1/devices/${fleet.devices[0].id}`)
  })

  it('shows devices online and the build', () => {
    expect(metricValue(page, 'trellis_devices_online')).toBe(1)
    expect(page).toMatch(/^trellis_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+[^"]*"\} 1$/m)
  })

  it('counts a command once, by its final status, even when its ack comes after the timeout', async () => {
    const deviceId = fleet.devices[0].id
    const sent = await api.post(`/v1/devices/${deviceId}/commands?wait=1s`, { set: { power: false } }, fleet.ownerToken)
    expect(sent.body.status).toBe('timeout')
    releaseAck()
    await eventually(() => api.get(`/v1/devices/${deviceId}/commands/${sent.body.id}`, fleet.ownerToken), (r) => r.body.status === 'ok', { what: 'the late ack to be recorded' })
    const text = await scrape(stack.httpUrl)
    const counted = text.split('\n').filter((l) => l.startsWith('trellis_commands_total{'))
    expect(counted.some((l) => l.includes('status="pending"'))).toBe(false)
    expect(counted.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)).toBe(1)
  })
})

describe("the image's health check", () => {
  it('exits 0 against a healthy hub and 1 where nothing answers', async () => {
    const check = (port: string) => new Promise<number | null>((resolve) => {
      execFile(process.execPath, [path.join(root, 'dist/healthcheck.js')], { env: { ...process.env, NODE_OPTIONS: '', PORT: port } }, (err) => resolve(err ? (err.code as number) : 0))
    })
    expect(await check(new URL(stack.httpUrl).port)).toBe(0)
    expect(await check('1')).toBe(1)
  })
})

describe('the Grafana dashboard', () => {
  it('queries only metrics a real hub exposes', async () => {
    const dashboard = JSON.parse(await readFile(path.join(root, 'ops/grafana/dashboards/trellis.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr)
    expect(exprs.length).toBeGreaterThan(10)
    const types = typesOf(page)
    const queried = new Set(exprs.flatMap((e) => e.match(/\b(?:trellis|process|nodejs)_[a-z0-9_]+/g) ?? []))
    const missing: string[] = []
    for (const name of queried) {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(name)
      if (histogram && types.get(histogram[1]) === 'histogram') continue
      if (!types.has(name)) missing.push(name)
    }
    expect(missing).toEqual([])
  })
})
