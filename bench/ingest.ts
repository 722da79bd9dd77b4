/**
 * `npm run bench -- ingest`: readings stored per second through Trellis
 * (in-process broker + hub, auth, ACL, validation) and through a baseline
 * (bare aedes + naive mqtt.js subscriber → JSON.parse → batched writePoints),
 * the same load, side by side; stored is counted in InfluxDB.
 */
import mqtt from 'mqtt'
import { topics } from '@trellis/device-sdk'
import { BenchChild } from './lib/child.js'
import { progress } from './lib/progress.js'
import { defaultProfiles, measurementsOf, profileByName } from './lib/payloads.js'
import { awaitStored, claimAll, countStored, influxCommand, post, provisionFleet, startBenchInflux, startTrellis, type BenchDevice, type BenchInflux } from './lib/stack.js'
import { fmtInt, fmtMiB, fmtNum, median, quantile, table } from './lib/stats.js'
import { machine, UsageWindow, type ProcessUsage } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const ingestOptions = {
  devices: { default: 1000, help: 'Simulated devices, spread over the profiles.' },
  runs: { default: 3, help: 'Runs of each system; the table shows medians.' },
  profiles: { default: defaultProfiles.join(','), help: 'Payload profiles (bench/lib/payloads.ts), comma-separated.' },
  'qos1-seconds': { default: 8, help: 'Length of the closed-loop QoS 1 phase.' },
  window: { default: 8, help: 'QoS 1 messages in flight per device in the closed loop; mqtt.js sets no limit, `overload` uses 8 too. 1 measures a device that awaits each PUBACK.' },
  'qos0-start': { default: 8000, help: 'First offered QoS 0 rate (msg/s) of the step search.' },
  'qos0-factor': { default: 1.25, help: 'Each QoS 0 step offers this much more than the last passing one.' },
  'step-seconds': { default: 3, help: 'Length of one QoS 0 step.' },
  'max-steps': { default: 10, help: 'QoS 0 steps at most per run.' },
  'refine-steps': { default: 2, help: 'Once a QoS 0 step is not stored in full, steps halving the gap between it and the last one that was (each 1 to 2 s longer in all); 0 keeps the coarse steps.' },
  'latency-seconds': { default: 6, help: 'Length of the latency phase at half the QoS 0 capacity.' },
  'skip-baseline': { default: false, help: 'Run Trellis only.' },
  'max-concurrent-writes': { default: 0, help: 'The hub writer\'s write requests in flight; 0 keeps the hub\'s default.' },
  rules: { default: 0, help: 'Automations loaded before the load, each on one device of the fleet (round-robin) watching a capability it reports, never matching: the cost of the rule index on the ingest path. 0 claims nothing.' },
} satisfies OptionSpecs

type IngestOptions = Options<typeof ingestOptions>

interface LoadResult { sent: number, acked: number, readingsSent: number, readingsAcked: number, heldBack: number, lagged: number, errors: number, unacked: number, elapsedMs: number }

interface PhaseResult {
  msgsPerS: number
  readingsPerS: number
  sent: number
  stored: number
  usage: Record<string, ProcessUsage>
  p50?: number
  p99?: number
  note?: string
}

interface SystemRun { qos1: PhaseResult, qos0: PhaseResult, latency?: PhaseResult }

const HOUR = 3_600_000

/** The system under load, Trellis or the baseline, as the phases see it. */
interface SystemUnderTest {
  name: string
  mqttUrl: string
  database: string
  pids: Record<string, number | undefined>
  close (): Promise<void>
}

export async function ingest (opts: IngestOptions): Promise<void> {
  const profileNames = opts.profiles.split(',').map((s) => s.trim()).filter(Boolean)
  profileNames.forEach(profileByName)
  const measurements = measurementsOf(profileNames)
  progress('ingest', 'starting influxd, the hub and the load processes')
  const influx = await startBenchInflux()
  const generator = await BenchChild.start('generator')
  const runs: Array<{ trellis: SystemRun, baseline?: SystemRun }> = []
  try {
    for (let r = 0; r < opts.runs; r++) {
      progress('ingest', `run ${r + 1}/${opts.runs}: Trellis`)
      const trellis = await runTrellis(opts, r, influx, generator, profileNames, measurements, runs)
      let baseline: SystemRun | undefined
      if (!opts['skip-baseline']) progress('ingest', `run ${r + 1}/${opts.runs}: baseline (bare aedes + naive subscriber)`)
      if (!opts['skip-baseline']) baseline = await runBaseline(opts, r, influx, generator, profileNames, measurements, runs, trellis.devices)
      runs.push({ trellis: trellis.result, baseline })
      console.error(`run ${r + 1}/${opts.runs} done`)
    }
  } finally {
    await generator.stop()
    await influx.dispose()
  }
  printIngest(opts, runs)
}

async function runTrellis (opts: IngestOptions, r: number, influx: BenchInflux, generator: BenchChild, profileNames: string[], measurements: string[], previous: Array<{ trellis: SystemRun }>): Promise<{ result: SystemRun, devices: BenchDevice[] }> {
  const database = `bench_trellis_${r}`
  const stack = await startTrellis({
    influxUrl: influx.url,
    database,
    ...(opts['max-concurrent-writes'] > 0 ? { writer: { maxConcurrentWrites: opts['max-concurrent-writes'] } } : {}),
    // One owner claims the fleet and loads its rules as fast as the API answers: past the per-account request limit.
    ...(opts.rules > 0 ? { automations: { maxPerOwner: opts.rules }, api: { rateLimits: { request: { perSecond: 1e9, burst: 1e9 } } } } : {}),
  })
  try {
    progress('ingest', `provisioning and connecting ${opts.devices} devices`)
    const fleet = await provisionFleet(stack.httpUrl, { count: opts.devices + 1, profiles: profileNames })
    const probe = fleet.devices.pop()!
    if (opts.rules > 0) await loadRules(stack.httpUrl, fleet.devices, opts.rules)
    const connected = await generator.call<{ connected: number, failed: number, firstError: string | null }>('connect', { url: stack.mqttUrl, devices: fleet.devices })
    if (connected.failed > 0) throw new Error(`${connected.failed} devices could not connect to Trellis: ${connected.firstError}`)
    const sut: SystemUnderTest = { name: 'trellis', mqttUrl: stack.mqttUrl, database, pids: { system: process.pid, generator: generator.pid, influxd: influx.pid }, close: async () => {} }
    const qos0Hint = previous.length > 0 ? median(previous.map((p) => p.trellis.qos0.msgsPerS)) : Number.NaN
    const result = await phases(opts, sut, influx, generator, measurements, qos0Hint)
    result.latency = await latencyPhase(opts, stack, probe, influx, generator, database, measurements, result.qos0.msgsPerS)
    await generator.call('disconnect', {})
    return { result, devices: fleet.devices }
  } finally {
    await stack.close()
    await influxCommand(influx.url, `DROP DATABASE "${database}"`)
  }
}

/** The numeric capabilities a rule may watch, first found first. */
const watchable = ['temperature', 'voltage', 'co2', 'powerDraw', 'humidity']

/**
 * Claims the fleet for one owner and creates `count` automations, round-robin
 * over the devices: each watches a capability its device reports and waits
 * for a value it never reaches, so every reading of a watched capability is
 * looked up and evaluated, and nothing fires.
 */
async function loadRules (httpUrl: string, devices: readonly BenchDevice[], count: number): Promise<void> {
  const token = await claimAll(httpUrl, devices)
  const capabilityOf = (d: BenchDevice) => {
    const declared = profileByName(d.profile).model.capabilities.map((c) => typeof c === 'string' ? c : (c as { name: string }).name)
    return watchable.find((c) => declared.includes(c)) ?? null
  }
  const target = devices.find((d) => profileByName(d.profile).model.capabilities.includes('power'))
  if (!target) throw new Error('--rules needs a device with a settable power capability in the fleet (the thermostat profile)')
  const candidates = devices.filter((d) => capabilityOf(d) !== null)
  for (let i = 0; i < count; i++) {
    const d = candidates[i % candidates.length]
    await post(httpUrl, '/v1/automations', {
      name: `bench rule ${i}`,
      trigger: { type: 'reading', deviceId: d.id, capability: capabilityOf(d), op: 'above', value: 1e12 },
      actions: [{ deviceId: target.id, command: { set: { power: false } } }],
    }, token)
  }
  console.error(`  ${count} automations loaded on ${Math.min(count, candidates.length)} devices`)
}

async function runBaseline (opts: IngestOptions, r: number, influx: BenchInflux, generator: BenchChild, profileNames: string[], measurements: string[], previous: Array<{ baseline?: SystemRun }>, devices: BenchDevice[]): Promise<SystemRun> {
  const database = `bench_baseline_${r}`
  const broker = await BenchChild.start('baseline-broker')
  const subscriber = await BenchChild.start('baseline-subscriber')
  try {
    const { port } = await broker.call<{ port: number }>('bare-listen', {})
    const mqttUrl = `mqtt://127.0.0.1:${port}`
    await subscriber.call('naive-start', { mqttUrl, influxUrl: influx.url, database, qos: 1, devices })
    const connected = await generator.call<{ failed: number, firstError: string | null }>('connect', { url: mqttUrl, devices })
    if (connected.failed > 0) throw new Error(`${connected.failed} devices could not connect to bare aedes: ${connected.firstError}`)
    const sut: SystemUnderTest = { name: 'baseline', mqttUrl, database, pids: { broker: broker.pid, subscriber: subscriber.pid, generator: generator.pid, influxd: influx.pid }, close: async () => {} }
    const hints = previous.filter((p) => p.baseline).map((p) => p.baseline!.qos0.msgsPerS)
    const result = await phases(opts, sut, influx, generator, measurements, hints.length ? median(hints) : Number.NaN)
    if (!broker.alive) result.qos0.note = `${result.qos0.note ?? ''}; the bare aedes process died during the search (its error is printed above)`
    await generator.call('disconnect', {})
    return result
  } finally {
    await subscriber.stop()
    await broker.stop()
    await influxCommand(influx.url, `DROP DATABASE "${database}"`)
  }
}

/** The two capacity phases: QoS 1 closed loop, then a QoS 0 step search for the highest rate stored in full. */
async function phases (opts: IngestOptions, sut: SystemUnderTest, influx: BenchInflux, generator: BenchChild, measurements: string[], qos0Hint: number): Promise<SystemRun> {
  const t0 = Date.now() - 16 * HOUR
  let window = 0
  const count = (base: number) => async () => (await countStored(influx.url, sut.database, measurements, base, base + HOUR)).total

  // QoS 1, closed loop: every device keeps `window` messages in flight; a PUBACK releases the next.
  const base1 = t0 + HOUR * window++
  const usage1 = new UsageWindow(sut.pids)
  const started1 = performance.now()
  progress('ingest', `${sut.name} QoS 1 closed loop, ${opts['qos1-seconds']} s`)
  const load1 = await generator.call<LoadResult>('load', { qos: 1, mode: 'closed', windowPerDevice: opts.window, durationMs: opts['qos1-seconds'] * 1000, tsBase: base1 })
  const stored1 = await awaitStored(count(base1), load1.readingsSent)
  const usageQos1 = usage1.stop()
  const seconds1 = Math.max(load1.elapsedMs, stored1.atMs - started1) / 1000
  console.error(`  ${sut.name} QoS 1 closed loop: ${fmtInt(load1.acked / seconds1)} msg/s acked, stored ${fmtInt(stored1.stored)}/${fmtInt(load1.readingsSent)} readings`)
  const qos1: PhaseResult = {
    msgsPerS: load1.acked / seconds1,
    readingsPerS: stored1.stored / seconds1,
    sent: load1.readingsSent,
    stored: stored1.stored,
    usage: usageQos1,
    note: load1.errors > 0 ? `${load1.errors} publish errors` : undefined,
  }

  // QoS 0, paced, stepping up until a step is not stored in full within a second of its end,
  // then halving the gap between the last step stored in full and the first that was not: with steps
  // 25% apart, one step more or less would move a ratio to the baseline by a quarter.
  let best: PhaseResult | null = null
  let failedAt = ''
  let steps = 0
  const step = async (rate: number, label: string): Promise<'kept-up' | 'fell-behind' | 'machine-bound'> => {
    steps++
    const base = t0 + HOUR * window++
    const usage = new UsageWindow(sut.pids)
    const started = performance.now()
    progress('ingest', `${sut.name} QoS 0 ${label}: ${fmtInt(rate)} msg/s for ${opts['step-seconds']} s`)
    const load = await generator.call<LoadResult>('load', { qos: 0, mode: 'paced', rate, durationMs: opts['step-seconds'] * 1000, tsBase: base })
    const loadEnd = performance.now()
    const stored = await awaitStored(count(base), load.readingsSent, { settleMs: 1500, timeoutMs: 10_000 })
    const stepUsage = usage.stop()
    const offered = load.sent + load.heldBack + load.lagged
    const keptUp = stored.stored === load.readingsSent && stored.atMs - loadEnd < 1000
    // The generator shares the machine: when it cannot offer 90% of the rate, higher steps would measure it, not the system.
    const generatorBound = load.sent < offered * 0.9
    console.error(`  ${sut.name} QoS 0 step ${fmtInt(rate)} msg/s: sent ${fmtInt(load.sent)} (held back ${fmtInt(load.heldBack)}, lagged ${fmtInt(load.lagged)}), stored ${fmtInt(stored.stored)}/${fmtInt(load.readingsSent)} readings, last ${fmtInt(stored.atMs - loadEnd)} ms after the step`)
    if (!keptUp) {
      failedAt = `at ${fmtInt(rate)} msg/s stored ${fmtInt(stored.stored)} of ${fmtInt(load.readingsSent)} readings${stored.stored === load.readingsSent ? `, the last ${fmtInt(stored.atMs - loadEnd)} ms after the step` : ''}`
      return 'fell-behind'
    }
    const seconds = (stored.atMs - started) / 1000
    const passed = { msgsPerS: load.sent / seconds, readingsPerS: stored.stored / seconds, sent: load.readingsSent, stored: stored.stored, usage: stepUsage }
    if (!best || passed.readingsPerS > best.readingsPerS) best = passed
    if (generatorBound) {
      failedAt = `at ${fmtInt(rate)} msg/s the generator offered only ${fmtInt(load.sent)} of ${fmtInt(offered)} messages (machine-bound)`
      return 'machine-bound'
    }
    return 'kept-up'
  }
  let rate = Number.isFinite(qos0Hint) ? Math.max(1000, qos0Hint * 0.8) : opts['qos0-start']
  let keptUpAt = 0
  let outcome: Awaited<ReturnType<typeof step>> = 'kept-up'
  for (let i = 0; i < opts['max-steps']; i++) {
    outcome = await step(rate, `step ${i + 1}/${opts['max-steps']} at most`)
    if (outcome !== 'kept-up') break
    keptUpAt = rate
    rate *= opts['qos0-factor']
  }
  if (outcome === 'fell-behind' && keptUpAt > 0) {
    let [low, high] = [keptUpAt, rate]
    let machineBound = false
    for (let i = 0; i < opts['refine-steps'] && !machineBound; i++) {
      const mid = (low + high) / 2
      const refined = await step(mid, `refining ${i + 1}/${opts['refine-steps']} between ${fmtInt(low)} and ${fmtInt(high)}`)
      if (refined === 'kept-up') low = mid
      else if (refined === 'fell-behind') high = mid
      else machineBound = true
    }
    if (!machineBound) failedAt = `between ${fmtInt(low)} msg/s, stored in full, and ${fmtInt(high)}, not (${steps} steps)`
  }
  const qos0: PhaseResult = best ?? { msgsPerS: Number.NaN, readingsPerS: Number.NaN, sent: 0, stored: 0, usage: {} }
  qos0.note = failedAt ? `search stopped ${failedAt}` : 'search ended at --max-steps'
  return { qos1, qos0 }
}

/** Publish-to-state latency of probe messages while the fleet offers half the QoS 0 capacity. */
async function latencyPhase (opts: IngestOptions, stack: Awaited<ReturnType<typeof startTrellis>>, probe: BenchDevice, influx: BenchInflux, generator: BenchChild, database: string, measurements: string[], capacity: number): Promise<PhaseResult> {
  const rate = Number.isFinite(capacity) ? capacity / 2 : opts['qos0-start'] / 2
  const base = Date.now() - 2 * HOUR
  const client = await mqtt.connectAsync(stack.mqttUrl, { clientId: probe.id, username: probe.id, password: probe.secret, reconnectPeriod: 0 })
  const latencies: number[] = []
  const waiting = new Map<number, number>()
  const onChange = (change: { kind: string, deviceId: string, readings?: Record<string, { ts: string }> }) => {
    if (change.kind !== 'state' || change.deviceId !== probe.id) return
    const first = Object.values(change.readings ?? {})[0]
    const ts = Date.parse(first?.ts ?? '')
    const sentAt = waiting.get(ts)
    if (sentAt === undefined) return
    waiting.delete(ts)
    latencies.push(performance.now() - sentAt)
  }
  stack.hub.state.on('readings', onChange)
  const profile = profileByName(probe.profile)
  let seq = 0
  const probeBase = Date.now() - HOUR
  const timer = setInterval(() => {
    const ts = probeBase + seq
    waiting.set(ts, performance.now())
    client.publish(topics.telemetry(probe.id), profile.encode(seq++, ts), { qos: 0 })
  }, 10)
  const usage = new UsageWindow({ system: process.pid, generator: generator.pid, influxd: influx.pid })
  progress('ingest', `latency probe beside ${fmtInt(rate)} msg/s, ${opts['latency-seconds']} s`)
  const load = await generator.call<LoadResult>('load', { qos: 0, mode: 'paced', rate, durationMs: opts['latency-seconds'] * 1000, tsBase: base })
  clearInterval(timer)
  const stored = await awaitStored(async () => (await countStored(influx.url, database, measurements, base, base + HOUR)).total, load.readingsSent, { settleMs: 1500 })
  const phaseUsage = usage.stop()
  stack.hub.state.off('readings', onChange)
  await client.endAsync(true)
  return {
    msgsPerS: load.sent / (load.elapsedMs / 1000),
    readingsPerS: stored.stored / (load.elapsedMs / 1000),
    sent: load.readingsSent,
    stored: stored.stored,
    usage: phaseUsage,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    note: `${latencies.length} probes, ${waiting.size} not seen in state`,
  }
}

function printIngest (opts: IngestOptions, runs: Array<{ trellis: SystemRun, baseline?: SystemRun }>): void {
  const med = (pick: (r: { trellis: SystemRun, baseline?: SystemRun }) => number | undefined) => median(runs.map(pick).filter((v): v is number => v !== undefined))
  const row = (label: string, pick: (r: { trellis: SystemRun, baseline?: SystemRun }) => PhaseResult | undefined) => {
    if (!runs.some((r) => pick(r))) return null
    const usage = (proc: string, f: (u: ProcessUsage) => number) => med((r) => { const u = pick(r)?.usage[proc]; return u ? f(u) : undefined })
    const systemCpu = med((r) => { const p = pick(r); if (!p) return undefined; return ['system', 'broker', 'subscriber'].reduce((s, k) => s + (p.usage[k]?.cpuPercent ?? 0), 0) })
    const systemRss = med((r) => { const p = pick(r); if (!p) return undefined; return ['system', 'broker', 'subscriber'].reduce((s, k) => s + (p.usage[k]?.peakRssBytes ?? 0), 0) })
    return [
      label,
      fmtInt(med((r) => pick(r)?.msgsPerS)),
      fmtInt(med((r) => pick(r)?.readingsPerS)),
      runs.map((r) => { const p = pick(r); return p ? `${fmtInt(p.stored)}/${fmtInt(p.sent)}` : '-' }).join(' '),
      fmtNum(med((r) => pick(r)?.p50), 1),
      fmtNum(med((r) => pick(r)?.p99), 1),
      `${fmtInt(systemCpu)}%`,
      fmtNum(med((r) => { const p = pick(r); if (!p) return undefined; return ['system', 'broker', 'subscriber'].reduce((s, k) => s + (p.usage[k]?.cpuPercent ?? 0), 0) * 1e4 / p.msgsPerS }), 1),
      `${fmtInt(usage('generator', (u) => u.cpuPercent))}%`,
      `${fmtInt(usage('influxd', (u) => u.cpuPercent))}%`,
      fmtMiB(systemRss),
    ]
  }
  const rows = [
    row('Trellis QoS 1 (closed loop)', (r) => r.trellis.qos1),
    row('Trellis QoS 0 (highest step stored in full)', (r) => r.trellis.qos0),
    row('Trellis QoS 0 at half capacity (latency)', (r) => r.trellis.latency),
    row('baseline QoS 1 (closed loop)', (r) => r.baseline?.qos1),
    row('baseline QoS 0 (highest step stored in full)', (r) => r.baseline?.qos0),
  ].filter((x): x is string[] => x !== null)
  console.log(`\ningest: ${opts.devices} devices, profiles ${opts.profiles}, medians of ${runs.length} runs\n`)
  console.log(table(['system and phase', 'msg/s', 'readings stored/s', 'stored/sent per run', 'p50 ms', 'p99 ms', 'system CPU', 'system CPU µs/msg', 'generator CPU', 'influxd CPU', 'system peak RSS'], rows))
  if (!opts['skip-baseline']) {
    const ratio = (a: (r: { trellis: SystemRun, baseline?: SystemRun }) => number | undefined, b: (r: { trellis: SystemRun, baseline?: SystemRun }) => number | undefined) => fmtNum(med(a) / med(b), 2)
    console.log('\nratios (readings stored/s, Trellis / baseline):')
    console.log(`  QoS 0 / baseline QoS 0: ${ratio((r) => r.trellis.qos0.readingsPerS, (r) => r.baseline?.qos0.readingsPerS)}  (target >= 1.3)`)
    console.log(`  QoS 1 / baseline QoS 0: ${ratio((r) => r.trellis.qos1.readingsPerS, (r) => r.baseline?.qos0.readingsPerS)}  (target >= 1.0)`)
    console.log(`  QoS 1 / baseline QoS 1: ${ratio((r) => r.trellis.qos1.readingsPerS, (r) => r.baseline?.qos1.readingsPerS)}`)
  }
  console.log('\nnotes:')
  runs.forEach((r, i) => {
    console.log(`  run ${i + 1}: Trellis QoS 0 ${r.trellis.qos0.note ?? ''}; latency ${r.trellis.latency?.note ?? ''}`)
    if (r.baseline) console.log(`  run ${i + 1}: baseline QoS 0 ${r.baseline.qos0.note ?? ''}`)
  })
  console.log(`\n${machine()}`)
  console.log('system = the hub process (broker + hub in one) for Trellis; bare aedes + naive subscriber processes for the baseline. CPU is % of one core.')
}
