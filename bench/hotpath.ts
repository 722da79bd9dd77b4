/**
 * `npm run bench -- hotpath`: the hub's per-message CPU cost on the ingest
 * path, without sockets or a load generator: messages are published into the
 * in-process broker (aedes → ingest → normalize → state → writer → InfluxDB)
 * with a bounded number in flight. CPU per message is what matters here and,
 * unlike throughput, it stays meaningful on a busy machine.
 */
import { topics } from '@trellis/device-sdk'
import { defaultProfiles, profileByName } from './lib/payloads.js'
import { provisionFleet, startBenchInflux, startTrellis } from './lib/stack.js'
import { fmtInt, fmtNum, median, table } from './lib/stats.js'
import { machine } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const hotpathOptions = {
  devices: { default: 1000, help: 'Devices the messages are spread over.' },
  messages: { default: 200_000, help: 'Messages per run.' },
  inflight: { default: 5000, help: 'Messages in delivery at once.' },
  runs: { default: 5, help: 'Runs; the table shows medians (the first run also warms the JIT).' },
} satisfies OptionSpecs

type HotpathOptions = Options<typeof hotpathOptions>

export async function hotpath (opts: HotpathOptions): Promise<void> {
  const influx = await startBenchInflux()
  const stack = await startTrellis({ influxUrl: influx.url, database: 'bench_hotpath' })
  const rows: Array<{ cpuUsPerMsg: number, msgsPerS: number }> = []
  let path = 'aedes.publish → ingest → InfluxDB'
  try {
    const fleet = await provisionFleet(stack.httpUrl, { count: opts.devices, profiles: defaultProfiles })
    for (const d of fleet.devices) await stack.hub.directory.get(d.id)
    const devices = fleet.devices.map((d) => ({ id: d.id, topic: topics.telemetry(d.id), profile: profileByName(d.profile), seq: 0 }))
    const aedes = stack.hub.broker.aedes
    // Telemetry enters where a device's publish does: the broker's step before the PUBACK
    // when ingest takes it there, else the in-process delivery to ingest's subscription.
    const beforeAck = (stack.hub.broker as unknown as { beforeAck?: ((id: string, packet: unknown, done: (err?: Error | null) => void) => void) | null }).beforeAck
    if (beforeAck) path = 'broker step before the PUBACK → ingest → InfluxDB'
    const publish = (deviceId: string, packet: { cmd: 'publish', topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, dup: boolean }, done: () => void) => {
      if (beforeAck) beforeAck(deviceId, packet, () => done())
      else aedes.publish(packet, () => done())
    }
    for (let r = 0; r <= opts.runs; r++) {
      const base = Date.now() - (20 - r) * 3_600_000
      const cpu = process.cpuUsage()
      const started = performance.now()
      await new Promise<void>((resolve) => {
        let sent = 0
        let done = 0
        const pump = () => {
          while (sent < opts.messages && sent - done < opts.inflight) {
            const d = devices[sent % devices.length]
            const payload = Buffer.from(d.profile.encode(d.seq, base + d.seq))
            d.seq++
            sent++
            publish(d.id, { cmd: 'publish', topic: d.topic, payload, qos: 1, retain: false, dup: false }, () => {
              done++
              if (done === opts.messages) resolve()
              else if (sent - done < opts.inflight / 2) setImmediate(pump)
            })
          }
        }
        pump()
      })
      await stack.hub.writer.drain()
      const seconds = (performance.now() - started) / 1000
      const used = process.cpuUsage(cpu)
      for (const d of devices) d.seq = 0
      if (r === 0) continue
      rows.push({ cpuUsPerMsg: (used.user + used.system) / opts.messages, msgsPerS: opts.messages / seconds })
      console.error(`  run ${r}: ${fmtNum((used.user + used.system) / opts.messages, 1)} µs CPU per message, ${fmtInt(opts.messages / seconds)} msg/s`)
    }
  } finally {
    await stack.close()
    await influx.dispose()
  }
  console.log(`\nhotpath: ${fmtInt(opts.messages)} messages over ${opts.devices} devices, in-process publish, ${opts.inflight} in flight, medians of ${opts.runs} runs after a warm-up run\n`)
  console.log(table(['path', 'hub CPU per message', 'messages/s (wall)'], [[
    path,
    `${fmtNum(median(rows.map((x) => x.cpuUsPerMsg)), 1)} µs`,
    fmtInt(median(rows.map((x) => x.msgsPerS))),
  ]]))
  console.log(`\n${machine()}`)
  console.log('The encoding of payloads (the generator\'s work) is included; it is the same before and after a change.')
}
