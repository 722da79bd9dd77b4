/**
 * `npm run bench -- connections`: how many authenticated idle devices one
 * broker holds, how fast they connect, and what each costs in RSS; the same
 * count on bare aedes for comparison.
 */
import { BenchChild } from './lib/child.js'
import { hubNodeFlags, provisionFleet, startBenchInflux } from './lib/stack.js'
import { fmtInt, fmtNum, median, table } from './lib/stats.js'
import { cpuSeconds, fdLimit, machine } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const connectionsOptions = {
  devices: { default: 20_000, help: 'Devices to connect, capped by the file-descriptor limit (ulimit -n) less --fd-reserve.' },
  'fd-reserve': { default: 300, help: 'Descriptors kept free for influxd, HTTP and the registry.' },
  runs: { default: 3, help: 'Runs; the table shows medians.' },
  generators: { default: 2, help: 'Load-generator processes sharing the devices (each has its own fd limit).' },
  'source-addresses': { default: 8, help: 'Loopback source addresses 127.0.0.1..N to spread connections over.' },
  concurrency: { default: 200, help: 'Connection attempts in flight per generator.' },
  keepalive: { default: 60, help: 'MQTT keepalive of the devices, in seconds.' },
  'idle-seconds': { default: 10, help: 'How long the devices stay connected and idle while CPU is measured.' },
  'time-cap-seconds': { default: 180, help: 'Give up connecting after this long.' },
  'skip-bare': { default: false, help: 'Skip the bare-aedes comparison.' },
  'settle-seconds': { default: 60, help: 'Before each RSS measure, how long at most to wait (with a full GC each second) for V8 to give back the young generation that connecting grew; with 19,700 devices 20 s was not always enough, 45 s was.' },
} satisfies OptionSpecs

type ConnectionsOptions = Options<typeof connectionsOptions>

interface ConnectResult { connected: number, failed: number, firstError: string | null, elapsedMs: number }

interface ConnectionsRun {
  system: string
  connected: number
  failed: number
  firstError: string | null
  connectPerS: number
  rssBefore: number
  rssHalf: number
  rssAfter: number
  perConnection: number
  /** RSS growth per connection over the second half: the marginal cost, without one-off growth. */
  marginal: number
  youngBefore: number
  youngAfter: number
  /** Both, with the young generation's growth set aside. */
  perConnectionOld: number
  marginalOld: number
  idleCpuPercent: number
}

export async function connections (opts: ConnectionsOptions): Promise<void> {
  const limit = fdLimit()
  const target = Math.max(1, Math.min(opts.devices, (Number.isFinite(limit) ? limit : opts.devices) - opts['fd-reserve']))
  const addresses = Array.from({ length: opts['source-addresses'] }, (_, i) => `127.0.0.${i + 1}`)
  const results: ConnectionsRun[] = []
  for (let r = 0; r < opts.runs; r++) {
    results.push(await runTrellis(opts, target, addresses))
    if (!opts['skip-bare']) results.push(await runBare(opts, target, addresses))
  }
  const rows = ['trellis', 'bare aedes'].map((system) => {
    const mine = results.filter((x) => x.system === system)
    if (mine.length === 0) return null
    const m = (f: (x: ConnectionsRun) => number) => median(mine.map(f))
    return [
      system,
      fmtInt(m((x) => x.connected)),
      fmtInt(m((x) => x.failed)),
      fmtInt(m((x) => x.connectPerS)),
      `${fmtNum(m((x) => x.rssBefore) / 1024 / 1024, 0)} MiB`,
      `${fmtNum(m((x) => x.rssAfter) / 1024 / 1024, 0)} MiB`,
      `${fmtNum(m((x) => x.youngBefore) / 1024 / 1024, 0)} → ${fmtNum(m((x) => x.youngAfter) / 1024 / 1024, 0)} MiB`,
      `${fmtNum(m((x) => x.perConnection) / 1024, 1)} / ${fmtNum(m((x) => x.marginal) / 1024, 1)} KiB`,
      `${fmtNum(m((x) => x.perConnectionOld) / 1024, 1)} / ${fmtNum(m((x) => x.marginalOld) / 1024, 1)} KiB`,
      `${fmtNum(m((x) => x.idleCpuPercent), 1)}%`,
    ]
  }).filter((x): x is string[] => x !== null)
  console.log(`\nconnections: ${fmtInt(target)} devices asked (ulimit -n ${limit}, ${opts['fd-reserve']} kept free), ${addresses.length} source addresses, keepalive ${opts.keepalive} s, medians of ${opts.runs} run(s)\n`)
  console.log(table(['broker', 'connected', 'failed', 'connects/s', 'RSS before', 'RSS connected', 'young generation', 'RSS per connection, all / second half', 'the same, young generation set aside', `idle CPU (${opts['idle-seconds']} s)`], rows))
  for (const x of results) if (x.firstError) console.log(`  ${x.system}: first error: ${x.firstError}`)
  console.log(`\n${machine()}`)
  console.log(`RSS is measured idle, after a full GC, once the young generation is back to idle size (${idleYoungBytes / 1024 / 1024} MiB, waiting at most ${opts['settle-seconds']} s), before`)
  console.log('connecting, at half the devices and with all. "all" divides all the growth by all devices;')
  console.log('"second half" the growth from half to all by the second half: the cost of one more device, without the one-off growth (code warming')
  console.log('up, tables sized on first use) of the first connections. The young generation (V8 new space) grows with the allocation rate up to its')
  console.log('flag (--max-semi-space-size, 64 MiB a half for the hub), not with devices, and shrinks when the process idles; a young generation')
  console.log('still over idle size when measured (see the column) is set aside in the last column.')
  console.log('"trellis" is the whole hub process (broker, hub, registry).')
}

async function connectSpread (generators: BenchChild[], url: string, devices: Array<{ id: string, secret: string, profile: string }>, opts: ConnectionsOptions, addresses: string[]): Promise<ConnectResult> {
  const started = performance.now()
  const parts = await Promise.all(generators.map((g, i) => g.call<ConnectResult>('connect', {
    url,
    devices: devices.filter((_, k) => k % generators.length === i),
    localAddresses: addresses,
    concurrency: opts.concurrency,
    keepaliveS: opts.keepalive,
    timeoutMs: opts['time-cap-seconds'] * 1000,
  })))
  return {
    connected: parts.reduce((s, p) => s + p.connected, 0),
    failed: parts.reduce((s, p) => s + p.failed, 0),
    firstError: parts.find((p) => p.firstError)?.firstError ?? null,
    elapsedMs: performance.now() - started,
  }
}

/**
 * Connects the devices in two halves and measures RSS (after a full GC) at
 * each step; `measure` reads the broker process's RSS.
 */
async function connectInHalves (generators: BenchChild[], url: string, devices: Array<{ id: string, secret: string, profile: string }>, opts: ConnectionsOptions, addresses: string[], measure: () => Promise<{ rss: number, young: number }>) {
  const before = await measure()
  const half = Math.floor(devices.length / 2)
  const first = await connectSpread(generators, url, devices.slice(0, half), opts, addresses)
  const atHalf = await measure()
  const second = await connectSpread(generators, url, devices.slice(half), opts, addresses)
  const after = await measure()
  const result: ConnectResult = {
    connected: first.connected + second.connected,
    failed: first.failed + second.failed,
    firstError: first.firstError ?? second.firstError,
    elapsedMs: first.elapsedMs + second.elapsedMs,
  }
  const all = Math.max(1, result.connected)
  const secondHalf = Math.max(1, second.connected)
  return {
    ...result,
    connectPerS: result.connected / (result.elapsedMs / 1000),
    rssBefore: before.rss,
    rssHalf: atHalf.rss,
    rssAfter: after.rss,
    perConnection: (after.rss - before.rss) / all,
    marginal: (after.rss - atHalf.rss) / secondHalf,
    youngBefore: before.young,
    youngAfter: after.young,
    perConnectionOld: (after.rss - after.young - (before.rss - before.young)) / all,
    marginalOld: (after.rss - after.young - (atHalf.rss - atHalf.young)) / secondHalf,
  }
}

async function startGenerators (n: number): Promise<BenchChild[]> {
  return await Promise.all(Array.from({ length: n }, () => BenchChild.start('generator')))
}

/** The young generation of an idle process: V8's initial semi-spaces, a few MiB at most. */
const idleYoungBytes = 4 * 1024 * 1024

/**
 * RSS and young generation of an idle process (`child`: the hub or bare
 * aedes), after a full GC. Connecting thousands of devices at once allocates
 * fast, and V8 grows its young generation to its flag's limit (128 MiB for the
 * hub's 64 MiB semi-spaces); it gives it back once allocation has been low for
 * some five seconds. Measured at once, a figure per device carried that
 * one-off: so each measure waits, with a GC a second, until the young
 * generation is back to idle size, at most `settleSeconds`.
 */
async function idleMemory (child: BenchChild, settleSeconds: number): Promise<{ rss: number, young: number }> {
  const deadline = performance.now() + settleSeconds * 1000
  let sample = await child.call<{ rss: number, young: number }>('gc', {})
  do {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    sample = await child.call<{ rss: number, young: number }>('gc', {})
  } while (sample.young > idleYoungBytes && performance.now() < deadline)
  return sample
}

async function runTrellis (opts: ConnectionsOptions, target: number, addresses: string[]): Promise<ConnectionsRun> {
  const influx = await startBenchInflux()
  // A process of its own per run: what is measured is the whole process, so earlier runs must not be in it.
  const hub = await BenchChild.start('hub', { nodeFlags: hubNodeFlags })
  const generators = await startGenerators(opts.generators)
  try {
    const { httpUrl, mqttUrl } = await hub.call<{ httpUrl: string, mqttUrl: string }>('hub-start', { influxUrl: influx.url, database: 'bench_connections' })
    console.error(`  provisioning ${fmtInt(target)} devices…`)
    const fleet = await provisionFleet(httpUrl, { count: target, profiles: ['thermostat'] })
    const measure = async () => await idleMemory(hub, opts['settle-seconds'])
    console.error('  connecting to Trellis…')
    const result = await connectInHalves(generators, mqttUrl, fleet.devices, opts, addresses, measure)
    const cpuStart = cpuSeconds(hub.pid!)
    await new Promise((resolve) => setTimeout(resolve, opts['idle-seconds'] * 1000))
    const idleCpuPercent = ((cpuSeconds(hub.pid!) - cpuStart) / opts['idle-seconds']) * 100
    console.error(`  trellis: ${fmtInt(result.connected)} connected in ${fmtInt(result.elapsedMs)} ms, ${fmtInt(result.failed)} failed`)
    return { system: 'trellis', ...result, idleCpuPercent }
  } finally {
    await Promise.all(generators.map((g) => g.stop()))
    await hub.stop()
    await influx.dispose()
  }
}

async function runBare (opts: ConnectionsOptions, target: number, addresses: string[]): Promise<ConnectionsRun> {
  const broker = await BenchChild.start('baseline-broker')
  const generators = await startGenerators(opts.generators)
  try {
    const { port } = await broker.call<{ port: number }>('bare-listen', {})
    const devices = Array.from({ length: target }, (_, i) => ({ id: `bare-${i}`, secret: 'unused', profile: 'thermostat' }))
    const measure = async () => await idleMemory(broker, opts['settle-seconds'])
    console.error('  connecting to bare aedes…')
    const result = await connectInHalves(generators, `mqtt://127.0.0.1:${port}`, devices, opts, addresses, measure)
    const cpuStart = cpuSeconds(broker.pid!)
    await new Promise((resolve) => setTimeout(resolve, opts['idle-seconds'] * 1000))
    const idleCpuPercent = ((cpuSeconds(broker.pid!) - cpuStart) / opts['idle-seconds']) * 100
    console.error(`  bare aedes: ${fmtInt(result.connected)} connected in ${fmtInt(result.elapsedMs)} ms, ${fmtInt(result.failed)} failed`)
    return { system: 'bare aedes', ...result, idleCpuPercent }
  } finally {
    await Promise.all(generators.map((g) => g.stop()))
    await broker.stop()
  }
}
