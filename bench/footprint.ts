/**
 * `npm run bench -- footprint`: the default stack's memory at idle. Starts the
 * hub as `npm run hub` does (node with tsx, no INFLUX_URL or DATABASE_URL, so
 * it manages influxd and PostgreSQL itself) in a temporary DATA_DIR, with no
 * devices, waits, and sums the resident memory (RSS, from /proc) of the hub
 * and of every process under it: influxd, the PostgreSQL server and its
 * backends, the watchdog. PSS (each shared page divided among the processes
 * that share it) is shown beside it: RSS counts PostgreSQL's shared buffers
 * and libraries once per process.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmtMiB, table } from './lib/stats.js'
import { machine } from './lib/system.js'
import type { OptionSpecs, Options } from './lib/options.js'

export const footprintOptions = {
  nodeFlags: { default: '--max-semi-space-size=64', help: 'Node flags of the hub, as `npm run hub` gives them.' },
  idle: { default: 20, help: 'Seconds the stack stays idle before the figure is taken (registry connections idle out after 10).' },
  budget: { default: 200, help: 'The budget in MiB the total RSS is held against; over it, the bench exits with code 1.' },
} satisfies OptionSpecs

type FootprintOptions = Options<typeof footprintOptions>

interface ProcessMemory { pid: number, name: string, rss: number, pss: number }

/** Every process under `root` (itself included), from /proc. */
async function processTree (root: number): Promise<number[]> {
  const parents = new Map<number, number>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const tree = [root]
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid)
  return tree.filter((pid) => parents.has(pid))
}

async function memoryOf (pid: number): Promise<ProcessMemory | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '')
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
    const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024
    const exe = path.basename(cmdline[0] ?? '?')
    // postgres names its processes by their role ("postgres: checkpointer").
    const name = exe === 'node' ? `node ${cmdline.find((a) => a.endsWith('.ts')) ?? ''}`.trim()
      : exe.startsWith('postgres:') ? cmdline.join(' ') : cmdline.includes('trellis-postgres-watchdog') ? 'sh (PostgreSQL watchdog)' : exe
    return { pid, name, rss: kb(status, 'VmRSS'), pss: kb(rollup, 'Pss') }
  } catch {
    return null
  }
}

/** Bytes of the files under `dir`. */
async function diskBytes (dir: string): Promise<number> {
  let bytes = 0
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(path.join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size
  }
  return bytes
}

async function measure (root: number): Promise<ProcessMemory[]> {
  return (await Promise.all((await processTree(root)).map(memoryOf))).filter((m): m is ProcessMemory => m !== null)
}

export async function footprint (opts: FootprintOptions): Promise<void> {
  // A mkdtemp folder is 0700: as root, the hub opens it for PostgreSQL's user to pass through.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-footprint-'))
  const main = fileURLToPath(new URL('../hub/src/main.ts', import.meta.url))
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'info' }
  delete env.INFLUX_URL
  delete env.DATABASE_URL
  // node itself with tsx's loader, as `npm run hub` runs it minus the tsx launcher process (48 MiB more, not part of the hub).
  const started = performance.now()
  const hub = spawn(process.execPath, [...opts.nodeFlags.split(' ').filter(Boolean), '--import', 'tsx', main], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => hub.once('exit', () => resolve()))
  let stderr = ''
  hub.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
  try {
    const apiUrl = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`the hub did not start within 60 s:\n${stderr}`)), 60_000)
      hub.stdout!.on('data', (c: Buffer) => {
        out = (out + c.toString()).slice(-8000)
        const line = out.split('\n').find((l) => l.includes('Trellis hub is up'))
        if (line) { clearTimeout(timer); resolve(String((JSON.parse(line) as { api: string }).api)) }
      })
      void exited.then(() => { clearTimeout(timer); reject(new Error(`the hub exited before it was up:\n${out}\n${stderr}`)) })
    })
    const upMs = performance.now() - started
    const atStart = await measure(hub.pid!)
    // Peak over the idle window, sampled each second, as well as the figure at its end.
    let peak = atStart.reduce((s, p) => s + p.rss, 0)
    for (let s = 0; s < opts.idle; s++) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      peak = Math.max(peak, (await measure(hub.pid!)).reduce((sum, p) => sum + p.rss, 0))
    }
    const idle = await measure(hub.pid!)
    const total = (list: ProcessMemory[], key: 'rss' | 'pss') => list.reduce((s, p) => s + p[key], 0)

    console.log(`## Idle footprint of the default stack (hub + managed PostgreSQL + managed influxd, no devices)\n\n${machine()}\nup in ${(upMs / 1000).toFixed(1)} s; figures after ${opts.idle} s idle\n`)
    console.log(table(['pid', 'process', 'RSS MiB', 'PSS MiB'], [
      ...idle.map((p) => [String(p.pid), p.name, fmtMiB(p.rss), fmtMiB(p.pss)]),
      ['', `**total (${idle.length} processes)**`, `**${fmtMiB(total(idle, 'rss'))}**`, `**${fmtMiB(total(idle, 'pss'))}**`],
    ]))
    const group = (re: RegExp, list: ProcessMemory[]) => list.filter((p) => re.test(p.name))
    console.log('\n' + table(['part', 'RSS MiB at start', `RSS MiB after ${opts.idle} s`, `PSS MiB after ${opts.idle} s`], [
      ['hub (node)', /^node/, ], ['PostgreSQL (all its processes)', /^(postgres|\/)/], ['influxd', /^influxd/], ['watchdog (sh)', /^sh/], ['other (tsx\'s esbuild, on a cold transform cache)', /^esbuild/],
    ].map(([label, re]) => [label as string, fmtMiB(total(group(re as RegExp, atStart), 'rss')), fmtMiB(total(group(re as RegExp, idle), 'rss')), fmtMiB(total(group(re as RegExp, idle), 'pss'))])))
    // Where the hub's own memory goes, as it reports it.
    const metrics = await (await fetch(`${apiUrl}/metrics`)).text()
    const metric = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)`, 'm').exec(metrics)?.[1] ?? Number.NaN)
    console.log('\n' + table(['hub (node)', 'MiB'], [
      ['V8 heap used / committed', `${fmtMiB(metric('nodejs_heap_size_used_bytes'))} / ${fmtMiB(metric('nodejs_heap_size_total_bytes'))}`],
      ['of which the young generation (new space) committed', fmtMiB(metric('nodejs_heap_space_size_total_bytes{space="new"}'))],
      ['external (buffers and native)', fmtMiB(metric('nodejs_external_memory_bytes'))],
    ]))
    console.log(`\nregistry on disk (DATA_DIR/postgres): ${fmtMiB(await diskBytes(path.join(dataDir, 'postgres')))}`)
    const rss = total(idle, 'rss')
    console.log(`\ntotal RSS ${fmtMiB(rss)} at idle (peak ${fmtMiB(peak)} over the window); budget ${opts.budget} MiB: ${rss < opts.budget * 1024 ** 2 ? 'within' : 'OVER'}`)
    if (rss >= opts.budget * 1024 ** 2) process.exitCode = 1
  } finally {
    const tree = await processTree(hub.pid!)
    hub.kill('SIGTERM')
    await exited
    // Everything the hub started must be gone with it.
    const deadline = Date.now() + 15_000
    let left = tree
    while (Date.now() < deadline) {
      left = (await Promise.all(tree.map(async (pid) => (await memoryOf(pid)) ? pid : 0))).filter(Boolean)
      if (left.length === 0) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    console.log(left.length === 0 ? 'after SIGTERM to the hub: no process of the stack left running' : `after SIGTERM to the hub, still running: ${left.join(', ')}`)
    await rm(dataDir, { recursive: true, force: true })
  }
}
