/**
 * `npm run bench -- commands`: the command round trip an owner sees, API call
 * → hub validates and records → broker → SDK device handler → ack → hub
 * settles → HTTP answer, at 1, 10 and 100 commands in flight, first with the
 * hub otherwise idle, then while a fleet reports at half the ingest capacity.
 * The owner's app and the commanded devices run in one helper process, the
 * reporting fleet in another: the hub's process holds only the hub.
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks'
import { BenchChild } from './lib/child.js'
import { progress } from './lib/progress.js'
import { defaultProfiles } from './lib/payloads.js'
import { claimAll, hubNodeFlags, post, provisionFleet, startBenchInflux, startTrellis, type BenchDevice } from './lib/stack.js'
import { fmtInt, fmtMiB, fmtNum, median, quantile, table } from './lib/stats.js'
import { machine, UsageWindow, type ProcessUsage } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const commandsOptions = {
  levels: { default: '1,10,100', help: 'Commands in flight at once, comma-separated; each in flight command goes to a device of its own.' },
  commands: { default: 2000, help: 'Commands per level and run (fewer when the level\'s time runs out).' },
  'level-seconds': { default: 10, help: 'Time budget of one level in one run.' },
  runs: { default: 3, help: 'Runs of every level; the table shows medians of the runs\' percentiles.' },
  devices: { default: 1000, help: 'Reporting devices of the ingest load beside the commands.' },
  profile: { default: '', help: 'Write a CPU profile of the hub process over each measured level to <profile>-<condition>-<in flight>.cpuprofile (open in Chrome DevTools).' },
  'ingest-rate': { default: 15_000, help: 'Telemetry msg/s (QoS 0, mixed profiles) offered beside the commands: half the QoS 0 capacity `ingest` measures on the 2-core machine of docs/performance.md. 0: commands only.' },
  'broker-apart': { default: false, help: 'Run the broker in a process of its own (`npm run broker`) and the hub on its session (remote mode, BROKER_URL): every device, commanded or reporting, connects to that broker.' },
  'ingest-apart': { default: false, help: 'Send the reporting fleet to a second hub in a process of its own (its own PostgreSQL, the same influxd), not to the commanded one: the machine carries the same load, the commanded hub\'s loop none of it. The bound of any split of ingest from the API within one machine (a worker thread, a node apart).' },
} satisfies OptionSpecs

type CommandsOptions = Options<typeof commandsOptions>

interface LevelResult { latencies: number[], failures: number, firstFailure: string | null, seconds: number }
interface LevelRun {
  p50: number
  p99: number
  max: number
  commands: number
  failures: number
  perS: number
  loopP99: number
  loopMax: number
  /** The hub's CPU time per command (µs), ingest beside it included: in a closed loop, what bounds the rate and so the latency. */
  cpuPerCommandUs: number
  /** Stop-the-world pauses of the hub's V8 over the level: scavenges (young generation) and the rest, longest and summed (ms). */
  gc: { scavengeMax: number, scavengeTotal: number, scavenges: number, otherMax: number, otherTotal: number }
  usage: Record<string, ProcessUsage>
}
interface LoadResult { sent: number, heldBack: number, lagged: number, elapsedMs: number }

const warmupCommands = 200

export async function commands (opts: CommandsOptions): Promise<void> {
  const levels = opts.levels.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0)
  if (levels.length === 0) throw new Error(`--levels wants positive integers, got "${opts.levels}"`)
  progress('commands', 'starting influxd, the hub and the load processes')
  const influx = await startBenchInflux()
  const service = { username: 'trellis-hub', secret: 'bench-commands-service-secret' }
  const broker = opts['broker-apart'] ? await BenchChild.start('broker') : null
  const remoteBroker = broker ? { ...service, ...await broker.call<{ url: string }>('broker-start', service) } : undefined
  const stack = await startTrellis({ influxUrl: influx.url, database: 'bench_commands', remoteBroker, api: { rateLimits: { request: { perSecond: 1e9, burst: 1e9 } } } })
  await broker?.call('broker-auth-url', { url: `${stack.httpUrl}/internal/mqtt/auth` })
  const generator = await BenchChild.start('generator')
  const commander = await BenchChild.start('commander')
  const ingestApart = opts['ingest-apart'] && opts['ingest-rate'] > 0
  const ingestHub = ingestApart ? await BenchChild.start('hub', { nodeFlags: hubNodeFlags }) : null
  const loaded = `ingest at ${fmtInt(opts['ingest-rate'])} msg/s${ingestApart ? ' to a hub apart' : ''}`
  const conditions = opts['ingest-rate'] > 0 ? ['idle hub', loaded] : ['idle hub']
  const results = new Map<string, LevelRun[]>()
  const ingestNotes: string[] = []
  try {
    // The commanded devices: one maker's settable thermostats, claimed by one owner.
    progress('commands', 'provisioning the commanded devices')
    const maker = await post(stack.httpUrl, '/v1/makers', { name: 'Bench Thermostats' })
    const model = await post(stack.httpUrl, '/v1/models', { name: 'bench-settable-thermostat', capabilities: ['temperature', 'targetTemperature', 'power'] }, maker.token)
    const provisioned = await post(stack.httpUrl, '/v1/devices', { model: model.id, count: Math.max(...levels) }, maker.token)
    const targets = (provisioned.devices as Array<{ id: string, secret: string, claimCode: string }>)
      .map((d): BenchDevice => ({ ...d, profile: 'none', modelId: model.id, makerId: maker.id }))
    const token = await claimAll(stack.httpUrl, targets)
    await commander.call('commander-connect', { url: stack.mqttUrl, devices: targets })
    const deadline = Date.now() + 30_000
    while (!targets.every((d) => stack.hub.state.get(d.id)?.online)) {
      if (Date.now() > deadline) throw new Error('the commanded devices did not come online within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const ids = targets.map((d) => d.id)

    if (opts['ingest-rate'] > 0) {
      const reported = ingestHub
        ? await ingestHub.call<{ httpUrl: string, mqttUrl: string }>('hub-start', { influxUrl: influx.url, database: 'bench_commands_apart' })
        : stack
      const fleet = await provisionFleet(reported.httpUrl, { count: opts.devices, profiles: defaultProfiles, makerName: 'Bench Reporters' })
      const connected = await generator.call<{ connected: number, failed: number }>('connect', { url: reported.mqttUrl, devices: fleet.devices })
      if (connected.failed > 0) throw new Error(`${connected.failed} reporting devices could not connect`)
    }

    const inspector = new Session()
    inspector.connect()
    const level = async (concurrency: number, count: number, profileAs?: string) => {
      if (profileAs) {
        await inspector.post('Profiler.enable')
        await inspector.post('Profiler.start')
      }
      const usage = new UsageWindow({ hub: process.pid, influxd: influx.pid, commander: commander.pid, generator: generator.pid, ...(ingestHub ? { 'ingest hub': ingestHub.pid } : {}), ...(broker ? { broker: broker.pid } : {}) })
      // Every hop of a command waits its turn in the hub's event loop: its delay bounds the round trip.
      const loop = monitorEventLoopDelay({ resolution: 5 })
      loop.enable()
      // A pause of the hub's heap stops its one loop: each is a candidate for the longest loop delay.
      const gc = { scavengeMax: 0, scavengeTotal: 0, scavenges: 0, otherMax: 0, otherTotal: 0 }
      const gcObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
          if (entry.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
            gc.scavenges++
            gc.scavengeTotal += entry.duration
            gc.scavengeMax = Math.max(gc.scavengeMax, entry.duration)
          } else {
            gc.otherTotal += entry.duration
            gc.otherMax = Math.max(gc.otherMax, entry.duration)
          }
        }
      })
      gcObserver.observe({ entryTypes: ['gc'] })
      const r = await commander.call<LevelResult>('command-level', { httpUrl: stack.httpUrl, token, ids, concurrency, commands: count, budgetMs: opts['level-seconds'] * 1000 })
      const run: LevelRun = {
        p50: quantile(r.latencies, 0.5),
        p99: quantile(r.latencies, 0.99),
        max: quantile(r.latencies, 1),
        commands: r.latencies.length + r.failures,
        failures: r.failures,
        perS: (r.latencies.length + r.failures) / r.seconds,
        loopP99: loop.percentile(99) / 1e6,
        loopMax: loop.max / 1e6,
        cpuPerCommandUs: 0,
        gc,
        usage: usage.stop(),
      }
      run.cpuPerCommandUs = run.usage.hub.cpuPercent * 10_000 / run.perS
      loop.disable()
      gcObserver.disconnect()
      if (profileAs) {
        const { profile } = await inspector.post('Profiler.stop')
        await writeFile(profileAs, JSON.stringify(profile))
      }
      if (r.firstFailure) console.error(`    ${r.failures} failed; first: ${r.firstFailure}`)
      return run
    }

    for (const condition of conditions) {
      progress('commands', `${condition}: warming up, then ${opts.runs} runs of ${levels.join(', ')} in flight, up to ${opts['level-seconds']} s each`)
      let load: Promise<LoadResult> | null = null
      if (condition !== 'idle hub') {
        const budget = (levels.length * opts.runs * opts['level-seconds'] + 30) * 1000
        load = generator.call<LoadResult>('load', { qos: 0, mode: 'paced', rate: opts['ingest-rate'], durationMs: budget, tsBase: Date.now() - 3_600_000 })
        await new Promise((resolve) => setTimeout(resolve, 2000))
      }
      await level(10, warmupCommands)
      for (let r = 0; r < opts.runs; r++) {
        for (const concurrency of levels) {
          const profileAs = opts.profile && r === 0 ? `${opts.profile}-${condition.replace(/[^a-z0-9]+/gi, '-')}-${concurrency}.cpuprofile` : undefined
          const run = await level(concurrency, opts.commands, profileAs)
          const key = `${condition}\t${concurrency}`
          results.set(key, [...(results.get(key) ?? []), run])
          console.error(`  ${condition}, run ${r + 1}, ${concurrency} in flight: p50 ${fmtNum(run.p50)} ms, p99 ${fmtNum(run.p99)} ms, ${fmtInt(run.perS)} commands/s, hub CPU ${fmtInt(run.usage.hub.cpuPercent)}%, hub loop waiting for a core ${fmtInt(run.usage.hub.waitPercent)}% of the time (the commander's ${fmtInt(run.usage.commander.waitPercent)}%), event-loop delay p99 ${fmtNum(run.loopP99)} ms, max ${fmtNum(run.loopMax)} ms, hub CPU ${fmtInt(run.cpuPerCommandUs)} µs/command, ${run.gc.scavenges} scavenges of at most ${fmtNum(run.gc.scavengeMax)} ms, other GC pauses at most ${fmtNum(run.gc.otherMax)} ms`)
        }
      }
      if (load) {
        await generator.call('load-stop', {})
        const l = await load
        ingestNotes.push(`ingest beside the commands: ${fmtInt(l.sent / (l.elapsedMs / 1000))} msg/s sent over ${fmtNum(l.elapsedMs / 1000, 0)} s (${fmtInt(l.heldBack)} held back by full sockets, ${fmtInt(l.lagged)} behind by generator lag)`)
      }
    }
    inspector.disconnect()
    if (!ingestHub) {
      const shed = (await stack.hub.metrics.rejected.get()).values.find((v) => v.labels.reason === 'overload-shed')?.value ?? 0
      ingestNotes.push(`QoS 0 messages the hub shed under overload meanwhile: ${fmtInt(shed)}`)
    }
  } finally {
    await commander.stop()
    await generator.stop()
    await ingestHub?.stop()
    await stack.close()
    await broker?.stop()
    await influx.dispose()
  }

  const rows = [...results.entries()].map(([key, runs]) => {
    const [condition, concurrency] = key.split('\t')
    const m = (f: (x: LevelRun) => number) => median(runs.map(f))
    return [
      condition,
      concurrency,
      fmtInt(runs.reduce((n, x) => n + x.commands, 0)),
      fmtInt(runs.reduce((n, x) => n + x.failures, 0)),
      fmtNum(m((x) => x.p50)),
      fmtNum(m((x) => x.p99)),
      fmtNum(Math.max(...runs.map((x) => x.max))),
      fmtInt(m((x) => x.perS)),
      `${fmtNum(m((x) => x.loopP99))} / ${fmtNum(Math.max(...runs.map((x) => x.loopMax)))}`,
      `${fmtInt(m((x) => x.usage.hub.cpuPercent))}%`,
      `${fmtInt(m((x) => x.usage.hub.waitPercent))}%`,
      fmtInt(m((x) => x.cpuPerCommandUs)),
      `${fmtNum(Math.max(...runs.map((x) => x.gc.scavengeMax)))} / ${fmtNum(m((x) => x.gc.scavengeTotal * 100 / (x.commands / x.perS * 1000)))}%`,
      fmtNum(Math.max(...runs.map((x) => x.gc.otherMax))),
      `${fmtInt(m((x) => x.usage.commander.cpuPercent))}%`,
      `${fmtInt(m((x) => x.usage.generator.cpuPercent))}%`,
      `${fmtInt(m((x) => x.usage.influxd.cpuPercent))}%`,
      ...(ingestApart ? [`${fmtInt(m((x) => x.usage['ingest hub']?.cpuPercent ?? 0))}%`] : []),
      ...(broker ? [`${fmtInt(m((x) => x.usage.broker?.cpuPercent ?? 0))}%`] : []),
      fmtMiB(Math.max(...runs.map((x) => x.usage.hub.peakRssBytes))),
    ]
  })
  console.log(`\ncommands: API → device → ack → API, ${opts.runs} runs of up to ${fmtInt(opts.commands)} commands per level, medians of the runs' percentiles\n`)
  console.log(table(['load beside', 'in flight', 'commands', 'failed', 'p50 ms', 'p99 ms', 'max ms', 'commands/s', 'hub loop delay p99 / max ms', 'hub CPU', 'hub loop waiting for a core', 'hub CPU µs/command', 'scavenge max ms / % of time', 'other GC pause max ms', 'commander CPU', 'generator CPU', 'influxd CPU', ...(ingestApart ? ['ingest hub CPU'] : []), ...(broker ? ['broker CPU'] : []), 'hub peak RSS'], rows))
  console.log('')
  for (const note of ingestNotes) console.log(note)
  console.log(`\n${machine()}`)
  console.log('target: p99 < 20 ms at 10 in flight, with ingest at half its capacity. CPU is % of one core; "commander" runs the owner\'s app and the commanded devices.')
  console.log('hub loop waiting for a core: the share of the level the hub\'s main thread was runnable but not running (/proc/<pid>/schedstat), the load processes and influxd holding both cores; no turn of the loop is shorter than that wait.')
  console.log('hub CPU µs/command: the hub\'s CPU time over the level (ingest beside it included) per command; at 10 in flight the loop is near saturation, so latency follows it (Little: mean latency = in flight / commands/s). Scavenges and other GC pauses stop the loop: a loop delay max near the scavenge max says GC makes the tail.')
}
