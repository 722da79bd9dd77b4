/**
 * One node against two, at the same offered load: DEVICES SDK devices (split
 * evenly over the nodes, each node a hub process of its own) each report
 * RATE QoS 1 readings a second for SECONDS, then COMMANDS commands go, one at
 * a time, through the last node's API to devices on every node. Prints
 * readings stored/s, report (PUBACK) and command p50/p99, and the CPU the
 * nodes, Redis and PostgreSQL spent per 1000 readings (from /proc, children
 * included). The one-node run is a cluster of one (Redis on): the two-node
 * run's extra cost per message is what a second node adds, not what Redis
 * adds; `npm run bench -- ingest` gives the single node without Redis.
 *
 *   DEVICES=100 RATE=10 SECONDS=15 COMMANDS=40 npm run bench -- cluster
 */
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startInfluxd, startPostgres } from '@trellis/hub'
import { startHubProcess, type HubProcess } from '../test/support/hub-process.js'
import { startTestRedis } from '../test/support/redis.js'
import { apiClient, seedFleet } from '../test/support/api.js'
import { influxQuery } from '../test/support/influx.js'

const DEVICES = Number(process.env.DEVICES ?? 100)
const RATE = Number(process.env.RATE ?? 10)
const SECONDS = Number(process.env.SECONDS ?? 15)
const COMMANDS = Number(process.env.COMMANDS ?? 40)

/** CPU ms of a process and all its descendants, those that exited and were reaped included (cutime, cstime). */
function treeCpuMs (root: number | undefined): number {
  if (!root) return 0
  const parent = new Map<number, number>()
  const cpu = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(entry), Number(fields[1]))
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10)
    } catch {}
  }
  let total = 0
  for (const [pid, ms] of cpu) {
    for (let p: number | undefined = pid; p; p = parent.get(p)) {
      if (p === root) { total += ms; break }
    }
  }
  return total
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN
}

const dir = await mkdtemp(path.join(tmpdir(), 'trellis-clusterbench-'))
const influx = await startInfluxd({ dataDir: path.join(dir, 'influx'), supervise: false })
const postgres = await startPostgres({ dataDir: path.join(dir, 'pg'), supervise: false, ephemeral: true })
const redis = await startTestRedis()
function findRedisPid (): number | undefined {
  const port = new URL(redis.url).port
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmdline.startsWith('redis-server') && cmdline.includes(`:${port}`)) return Number(entry)
    } catch {}
  }
  return undefined
}

interface Row { nodes: number, offered: number, stored: number, reportP50: number, reportP99: number, commandP50: number, commandP99: number, nodeCpu: number, redisCpu: number, pgCpu: number }

async function scenario (nodeCount: number): Promise<Row> {
  const nodes: HubProcess[] = []
  const devices: Device[] = []
  try {
    for (let i = 0; i < nodeCount; i++) {
      nodes.push(await startHubProcess({ influxUrl: influx.url, dataDir: await mkdtemp(path.join(dir, 'node-')), databaseUrl: postgres.url, redisUrl: redis.url }))
    }
    const fleet = await seedFleet(apiClient(nodes[0].httpUrl), { count: DEVICES, makerName: `bench ${nodeCount}` })
    for (const [i, d] of fleet.devices.entries()) {
      devices.push(await connectDevice({ url: nodes[i % nodeCount].mqttUrl, deviceId: d.id, secret: d.secret }))
    }
    for (const device of devices) {
      device.onCommand('power', () => {})
    }
    const cpu0 = { nodes: nodes.reduce((n, h) => n + treeCpuMs(h.child.pid), 0), redis: treeCpuMs(findRedisPid()), pg: treeCpuMs(postgres.pid) }
    const latencies: number[] = []
    const base = Date.now() - 3_600_000
    const started = Date.now()
    await Promise.all(devices.map(async (device, d) => {
      const sends: Array<Promise<void>> = []
      for (let i = 0; i < RATE * SECONDS; i++) {
        const due = started + (i * 1000) / RATE + (d % RATE) * (1000 / RATE / devices.length)
        const wait = due - Date.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        const sent = Date.now()
        sends.push(device.report({ temperature: i % 100 }, base + i * 1000).then(() => { latencies.push(Date.now() - sent) }))
      }
      await Promise.all(sends)
    }))
    const total = DEVICES * RATE * SECONDS
    const deadline = Date.now() + 60_000
    let stored = 0
    while (Date.now() < deadline) {
      const [row] = await influxQuery(influx.url, `SELECT count("value") FROM "temperature" WHERE "maker" = '${fleet.makerId}'`)
      stored = (row?.count as number) ?? 0
      if (stored >= total) break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const elapsed = (Date.now() - started) / 1000
    const cpu1 = { nodes: nodes.reduce((n, h) => n + treeCpuMs(h.child.pid), 0), redis: treeCpuMs(findRedisPid()), pg: treeCpuMs(postgres.pid) }

    const api = apiClient(nodes[nodeCount - 1].httpUrl)
    const commandMs: number[] = []
    for (let i = 0; i < COMMANDS; i++) {
      const d = fleet.devices[i % fleet.devices.length]
      const t = Date.now()
      const sent = await api.post(`/v1/devices/${d.id}/commands`, { set: { power: i % 2 === 0 } }, fleet.ownerToken)
      if (sent.body.status === 'ok') commandMs.push(Date.now() - t)
    }
    const perThousand = (ms: number) => Math.round((ms / total) * 1000)
    return {
      nodes: nodeCount,
      offered: DEVICES * RATE,
      stored: Math.round(stored / elapsed),
      reportP50: percentile(latencies, 0.5),
      reportP99: percentile(latencies, 0.99),
      commandP50: percentile(commandMs, 0.5),
      commandP99: percentile(commandMs, 0.99),
      nodeCpu: perThousand(cpu1.nodes - cpu0.nodes),
      redisCpu: perThousand(cpu1.redis - cpu0.redis),
      pgCpu: perThousand(cpu1.pg - cpu0.pg),
    }
  } finally {
    await Promise.all(devices.map((d) => d.close().catch(() => {})))
    await Promise.all(nodes.map((n) => n.kill('SIGTERM').catch(() => n.kill('SIGKILL'))))
  }
}

try {
  const rows = [await scenario(1), await scenario(2)]
  console.log(`\ncluster bench: ${DEVICES} devices × ${RATE}/s QoS 1 for ${SECONDS} s (offered ${DEVICES * RATE} readings/s), ${COMMANDS} commands through the last node\n`)
  console.log('| nodes | offered/s | stored/s | report p50 / p99 ms | command p50 / p99 ms | node CPU ms / 1000 readings | Redis CPU ms / 1000 | PostgreSQL CPU ms / 1000 |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows) console.log(`| ${r.nodes} | ${r.offered} | ${r.stored} | ${r.reportP50} / ${r.reportP99} | ${r.commandP50} / ${r.commandP99} | ${r.nodeCpu} | ${r.redisCpu} | ${r.pgCpu} |`)
} finally {
  await redis.dispose()
  await postgres.stop()
  await influx.stop()
  await rm(dir, { recursive: true, force: true })
}
