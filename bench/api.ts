/**
 * `npm run bench -- api`: the owner API under load (autocannon in its own
 * process): `GET /v1/devices/{id}` (state from memory) and
 * `GET /v1/devices/{id}/telemetry` (history from InfluxDB).
 */
import { BenchChild } from './lib/child.js'
import { claimAll, provisionFleet, startBenchInflux, startTrellis } from './lib/stack.js'
import { fmtInt, fmtMiB, fmtNum, median, table } from './lib/stats.js'
import { machine, UsageWindow, type ProcessUsage } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const apiOptions = {
  devices: { default: 100, help: 'Devices of the owner whose API is loaded; requests rotate over them.' },
  'history-points': { default: 60, help: 'Temperature points per device in the last hour, for /telemetry.' },
  connections: { default: 50, help: 'Concurrent HTTP keep-alive connections.' },
  seconds: { default: 8, help: 'Length of each endpoint\'s load.' },
  runs: { default: 3, help: 'Runs of each endpoint; the table shows medians.' },
} satisfies OptionSpecs

type ApiOptions = Options<typeof apiOptions>

interface HttpResult { requests: number, rps: number, p50: number, p99: number, non2xx: number, errors: number, timeouts: number }

export async function api (opts: ApiOptions): Promise<void> {
  const influx = await startBenchInflux()
  // One owner token loads /telemetry at full speed: lift its per-token history limit, which would
  // otherwise answer 429 after 20 requests and leave this bench measuring refusals.
  const stack = await startTrellis({ influxUrl: influx.url, database: 'bench_api', api: { rateLimits: { history: { perSecond: 1e9, burst: 1e9 }, request: { perSecond: 1e9, burst: 1e9 } } } })
  const loader = await BenchChild.start('http-load')
  const results: Record<string, Array<HttpResult & { usage: Record<string, ProcessUsage> }>> = {}
  try {
    const fleet = await provisionFleet(stack.httpUrl, { count: opts.devices, profiles: ['thermostat'] })
    const token = await claimAll(stack.httpUrl, fleet.devices)
    // State and history are seeded through the hub's own state store and writer: this bench measures reads.
    const now = Date.now()
    for (const d of fleet.devices) {
      const points = []
      for (let i = 0; i < opts['history-points']; i++) {
        const ts = now - 3_500_000 + i * Math.floor(3_400_000 / opts['history-points'])
        points.push({ measurement: 'temperature', device: d.id, model: d.modelId, maker: d.makerId, value: 20 + (i % 50) / 10, ts })
      }
      stack.hub.writer.write(points)
      stack.hub.state.applyReadings(d.id, [{ capability: 'temperature', value: 21.5 }, { capability: 'humidity', value: 45 }, { capability: 'power', value: true }], now - 1000)
    }
    await stack.hub.writer.drain()
    const endpoints: Record<string, string[]> = {
      'GET /v1/devices/{id}': fleet.devices.map((d) => `/v1/devices/${d.id}`),
      'GET /v1/devices/{id}/telemetry (last hour, raw)': fleet.devices.map((d) => `/v1/devices/${d.id}/telemetry?capability=temperature`),
    }
    for (let r = 0; r < opts.runs; r++) {
      for (const [name, paths] of Object.entries(endpoints)) {
        const usage = new UsageWindow({ hub: process.pid, loader: loader.pid, influxd: influx.pid })
        const result = await loader.call<HttpResult>('http-load', { url: stack.httpUrl, paths, token, connections: opts.connections, durationS: opts.seconds })
        ;(results[name] ??= []).push({ ...result, usage: usage.stop() })
        console.error(`  run ${r + 1} ${name}: ${fmtInt(result.rps)} req/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}`)
      }
    }
  } finally {
    await loader.stop()
    await stack.close()
    await influx.dispose()
  }
  const rows = Object.entries(results).map(([name, runs]) => {
    const m = (f: (x: HttpResult & { usage: Record<string, ProcessUsage> }) => number) => median(runs.map(f))
    return [
      name,
      fmtInt(m((x) => x.rps)),
      fmtNum(m((x) => x.p50), 0),
      fmtNum(m((x) => x.p99), 0),
      fmtInt(m((x) => x.non2xx + x.errors + x.timeouts)),
      `${fmtInt(m((x) => x.usage.hub.cpuPercent))}%`,
      `${fmtInt(m((x) => x.usage.loader.cpuPercent))}%`,
      `${fmtInt(m((x) => x.usage.influxd.cpuPercent))}%`,
      fmtMiB(m((x) => x.usage.hub.peakRssBytes)),
    ]
  })
  console.log(`\napi: ${opts.devices} devices, ${opts.connections} connections, ${opts.seconds} s per endpoint, medians of ${opts.runs} runs\n`)
  console.log(table(['endpoint', 'requests/s', 'p50 ms', 'p99 ms', 'errors', 'hub CPU', 'autocannon CPU', 'influxd CPU', 'hub peak RSS'], rows))
  console.log(`\n${machine()}`)
  console.log('target: GET /v1/devices/{id} >= 10,000 requests/s. CPU is % of one core.')
}
