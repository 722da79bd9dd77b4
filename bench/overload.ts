/**
 * `npm run bench -- overload`: measures capacity, offers twice that for a
 * while (half the devices at QoS 1, half at QoS 0), then half of it; prints
 * RSS and stored readings over time, acknowledged-vs-stored for QoS 1, the
 * QoS 0 excess shed, and the throughput once the load drops.
 */
import { BenchChild } from './lib/child.js'
import { progress } from './lib/progress.js'
import { defaultProfiles, measurementsOf } from './lib/payloads.js'
import { awaitStored, countStored, provisionFleet, startBenchInflux, startTrellis } from './lib/stack.js'
import { fmtInt, fmtMiB, table } from './lib/stats.js'
import { cpuSeconds, machine, rssBytes, youngGenerationBytes } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const overloadOptions = {
  devices: { default: 1000, help: 'Devices; the first half publish at QoS 1, the rest at QoS 0.' },
  'capacity-seconds': { default: 5, help: 'Closed-loop QoS 1 phase that measures capacity.' },
  factor: { default: 2, help: 'Offered load during overload, as a multiple of the measured capacity.' },
  capacity: { default: 0, help: 'Take this capacity (msg/s) instead of measuring it: the closed loop understates it on a busy machine (QoS 1 waits for durable writes). 0 measures.' },
  'overload-seconds': { default: 60, help: 'Length of the overload.' },
  'recovery-seconds': { default: 10, help: 'Length of the phase at half capacity that follows.' },
  'max-inflight': { default: 8, help: 'Unacknowledged QoS 1 messages a device allows itself before it skips a turn.' },
} satisfies OptionSpecs

type OverloadOptions = Options<typeof overloadOptions>

interface LoadResult { sent: number, acked: number, readingsSent: number, readingsAcked: number, heldBack: number, lagged: number, errors: number, unacked: number, disconnected: number, elapsedMs: number }

const HOUR = 3_600_000

/**
 * Where the hub's RSS is: V8's heap as committed (with the young generation,
 * up to twice --max-semi-space-size, apart) and memory outside it (Buffers:
 * payloads, socket reads, InfluxDB request bodies).
 */
function heapOf (usage: NodeJS.MemoryUsage): { heap: number, young: number, external: number } {
  return { heap: usage.heapTotal, young: youngGenerationBytes(), external: usage.external }
}

export async function overload (opts: OverloadOptions): Promise<void> {
  const measurements = measurementsOf(defaultProfiles)
  progress('overload', 'starting influxd, the hub and the load processes')
  const influx = await startBenchInflux()
  const database = 'bench_overload'
  const stack = await startTrellis({ influxUrl: influx.url, database })
  const qos1Gen = await BenchChild.start('generator')
  const qos0Gen = await BenchChild.start('generator')
  const timeline: Array<{ t: number, phase: string, storedPerS: number, rss: number, heap: number, young: number, external: number, buffered: number, queued: number, hubCpu: number, influxCpu: number }> = []
  try {
    progress('overload', `provisioning and connecting ${opts.devices} devices`)
    const fleet = await provisionFleet(stack.httpUrl, { count: opts.devices, profiles: defaultProfiles })
    const half = Math.ceil(fleet.devices.length / 2)
    await qos1Gen.call('connect', { url: stack.mqttUrl, devices: fleet.devices.slice(0, half) })
    await qos0Gen.call('connect', { url: stack.mqttUrl, devices: fleet.devices.slice(half) })
    const t0 = Date.now() - 12 * HOUR
    // Each group and phase stamps its readings in its own hour, so InfluxDB can count them apart.
    const windows = { capacity: t0, overload1: t0 + HOUR, overload0: t0 + 2 * HOUR, recovery1: t0 + 3 * HOUR, recovery0: t0 + 4 * HOUR }
    const count = async (base: number) => (await countStored(influx.url, database, measurements, base, base + HOUR)).total
    const countAll = async () => (await countStored(influx.url, database, measurements, t0, t0 + 5 * HOUR)).total

    progress('overload', `capacity: QoS 1 closed loop, ${opts['capacity-seconds']} s`)
    const cap = await Promise.all([
      qos1Gen.call<LoadResult>('load', { qos: 1, mode: 'closed', durationMs: opts['capacity-seconds'] * 1000, tsBase: windows.capacity }),
      qos0Gen.call<LoadResult>('load', { qos: 1, mode: 'closed', durationMs: opts['capacity-seconds'] * 1000, tsBase: windows.capacity }),
    ])
    const capStored = await awaitStored(() => count(windows.capacity), cap[0].readingsSent + cap[1].readingsSent)
    const measured = (cap[0].acked + cap[1].acked) / (opts['capacity-seconds'])
    const capacity = opts.capacity > 0 ? opts.capacity : measured
    console.error(`  capacity (QoS 1 closed loop): ${fmtInt(measured)} msg/s, stored ${fmtInt(capStored.stored)}/${fmtInt(cap[0].readingsSent + cap[1].readingsSent)}${opts.capacity > 0 ? `; taking --capacity ${fmtInt(capacity)}` : ''}`)

    let phase = 'overload'
    const started = performance.now()
    // The timeline reads the writer's own count of points InfluxDB accepted: counting in
    // InfluxDB every second would load it as much as the writes do. Totals are counted in InfluxDB.
    const written = () => stack.hub.writer.stats.written
    let lastCount = written()
    let lastAt = performance.now()
    let lastHubCpu = cpuSeconds(process.pid)
    let lastInfluxCpu = cpuSeconds(influx.pid ?? 0)
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const n = written()
        const at = performance.now()
        const hubCpu = cpuSeconds(process.pid)
        const influxCpu = cpuSeconds(influx.pid ?? 0)
        const seconds = (at - lastAt) / 1000
        timeline.push({
          t: (at - started) / 1000,
          phase,
          storedPerS: (n - lastCount) / seconds,
          rss: rssBytes(process.pid),
          ...heapOf(process.memoryUsage()),
          buffered: stack.hub.writer.stats.buffered,
          queued: (stack.hub.broker.aedes as unknown as { mq?: { length?: number } }).mq?.length ?? 0,
          hubCpu: ((hubCpu - lastHubCpu) / seconds) * 100,
          influxCpu: ((influxCpu - lastInfluxCpu) / seconds) * 100,
        })
        lastHubCpu = hubCpu
        lastInfluxCpu = influxCpu
        lastCount = n
        lastAt = at
      }
    })()

    const offered = capacity * opts.factor
    progress('overload', `overload: ${fmtInt(offered)} msg/s offered for ${opts['overload-seconds']} s`)
    const over = await Promise.all([
      qos1Gen.call<LoadResult>('load', { qos: 1, mode: 'paced', rate: offered / 2, maxInflightPerDevice: opts['max-inflight'], durationMs: opts['overload-seconds'] * 1000, tsBase: windows.overload1 }),
      qos0Gen.call<LoadResult>('load', { qos: 0, mode: 'paced', rate: offered / 2, durationMs: opts['overload-seconds'] * 1000, tsBase: windows.overload0 }),
    ])
    phase = 'recovery'
    progress('overload', `recovery: ${fmtInt(capacity / 2)} msg/s for ${opts['recovery-seconds']} s`)
    const rec = await Promise.all([
      qos1Gen.call<LoadResult>('load', { qos: 1, mode: 'paced', rate: capacity / 4, maxInflightPerDevice: opts['max-inflight'], durationMs: opts['recovery-seconds'] * 1000, tsBase: windows.recovery1 }),
      qos0Gen.call<LoadResult>('load', { qos: 0, mode: 'paced', rate: capacity / 4, durationMs: opts['recovery-seconds'] * 1000, tsBase: windows.recovery0 }),
    ])
    phase = 'drain'
    progress('overload', 'waiting for every reading to be stored (at most 60 s)')
    await awaitStored(countAll, capStored.stored + [...over, ...rec].reduce((s, l) => s + l.readingsSent, 0), { settleMs: 3000, timeoutMs: 60_000 })
    sampling = false
    await sampler

    const stored = {
      overload1: await count(windows.overload1), overload0: await count(windows.overload0),
      recovery1: await count(windows.recovery1), recovery0: await count(windows.recovery0),
    }
    const recoverySeconds = (rec[0].elapsedMs) / 1000
    const recoveryLate = timeline.filter((s) => s.phase === 'recovery').slice(-Math.max(1, Math.floor(recoverySeconds / 2)))
    const recoveryRate = recoveryLate.reduce((s, x) => s + x.storedPerS, 0) / Math.max(1, recoveryLate.length)
    const recoveryOffered = (rec[0].readingsSent + rec[1].readingsSent) / recoverySeconds

    console.log(`\noverload: ${opts.devices} devices (half QoS 1, half QoS 0), capacity ${fmtInt(capacity)} msg/s, offered ${opts.factor}× = ${fmtInt(offered)} msg/s for ${opts['overload-seconds']} s, then ${fmtInt(capacity / 2)} msg/s for ${opts['recovery-seconds']} s\n`)
    console.log(table(['t (s)', 'phase', 'readings stored/s', 'hub RSS', 'V8 heap (young)', 'off-heap', 'writer points', 'broker queue', 'hub CPU', 'influxd CPU'], timeline.map((s) => [s.t.toFixed(0), s.phase, fmtInt(s.storedPerS), fmtMiB(s.rss), `${fmtMiB(s.heap)} (${fmtMiB(s.young)})`, fmtMiB(s.external), fmtInt(s.buffered), fmtInt(s.queued), `${fmtInt(s.hubCpu)}%`, `${fmtInt(s.influxCpu)}%`])))
    const peak = Math.max(...timeline.map((s) => s.rss))
    const shedMessages = (await stack.hub.metrics.rejected.get()).values.find((v) => v.labels.reason === 'overload-shed')?.value ?? 0
    const lostAcked1 = Math.max(0, over[0].readingsAcked - stored.overload1) + Math.max(0, rec[0].readingsAcked - stored.recovery1)
    console.log('')
    console.log(table(['measure', 'overload', 'recovery'], [
      ['QoS 1 readings sent', fmtInt(over[0].readingsSent), fmtInt(rec[0].readingsSent)],
      ['QoS 1 readings acknowledged', fmtInt(over[0].readingsAcked), fmtInt(rec[0].readingsAcked)],
      ['QoS 1 readings stored', fmtInt(stored.overload1), fmtInt(stored.recovery1)],
      ['QoS 1 devices the hub disconnected (unacknowledged messages kept, to re-send)', fmtInt(over[0].disconnected), fmtInt(rec[0].disconnected)],
      [`QoS 1 messages held back by their device (${opts['max-inflight']} unacknowledged)`, fmtInt(over[0].heldBack), fmtInt(rec[0].heldBack)],
      ['QoS 0 readings sent', fmtInt(over[1].readingsSent), fmtInt(rec[1].readingsSent)],
      ['QoS 0 readings stored', fmtInt(stored.overload0), fmtInt(stored.recovery0)],
      ['QoS 0 readings shed by the hub (sent − stored)', fmtInt(over[1].readingsSent - stored.overload0), fmtInt(rec[1].readingsSent - stored.recovery0)],
      ['QoS 0 messages held back by full sockets / generator lag', `${fmtInt(over[1].heldBack)} / ${fmtInt(over[1].lagged)}`, `${fmtInt(rec[1].heldBack)} / ${fmtInt(rec[1].lagged)}`],
    ]))
    console.log(`\nQoS 0 messages the hub shed and counted (trellis_ingest_rejected_total{reason="overload-shed"}), both phases: ${fmtInt(shedMessages)}`)
    console.log(`peak hub RSS ${fmtMiB(peak)} (target < 512 MiB); acknowledged QoS 1 readings lost: ${fmtInt(lostAcked1)} (target 0)`)
    console.log(`recovery: stored ${fmtInt(recoveryRate)} readings/s over its last samples, offered ${fmtInt(recoveryOffered)} readings/s`)
    console.log(`\n${machine()}`)
  } finally {
    await qos1Gen.stop()
    await qos0Gen.stop()
    await stack.close()
    await influx.dispose()
  }
}
