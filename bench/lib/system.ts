import v8 from 'node:v8'
import vm from 'node:vm'
import { readFileSync } from 'node:fs'
import { execSync } from 'node:child_process'
import os from 'node:os'

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux we run on. */
const CLOCK_TICKS = (() => {
  try { return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself hold spaces: utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/**
 * Seconds a process's main thread (a Node process: its event loop) has spent
 * runnable but waiting for a core, from /proc/<pid>/schedstat (its second
 * field, ns). On a machine whose cores are all busy this is time the loop
 * could not run however short its turns.
 */
export function runQueueWaitSeconds (pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9
  } catch {
    return Number.NaN
  }
}

/** Resident memory of a process in bytes, from /proc. */
export function rssBytes (pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+) kB/.exec(status)
    return match ? Number(match[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

export interface ProcessUsage {
  /** Share of one core over the window, in percent. */
  cpuPercent: number
  /** Share of the window its main thread spent runnable, waiting for a core, in percent. */
  waitPercent: number
  peakRssBytes: number
  lastRssBytes: number
}

/**
 * Watches named processes over a window: CPU from /proc/<pid>/stat at start
 * and end, peak RSS sampled every `intervalMs` (default 200).
 */
export class UsageWindow {
  private readonly startCpu = new Map<string, number>()
  private readonly startWait = new Map<string, number>()
  private readonly peak = new Map<string, number>()
  private readonly last = new Map<string, number>()
  private readonly started = performance.now()
  private readonly timer: NodeJS.Timeout
  readonly samples: Array<{ atMs: number, rss: Record<string, number> }> = []

  constructor (private readonly pids: Record<string, number | undefined>, intervalMs = 200) {
    for (const [name, pid] of Object.entries(pids)) {
      if (!pid) continue
      this.startCpu.set(name, cpuSeconds(pid))
      this.startWait.set(name, runQueueWaitSeconds(pid))
    }
    this.sample()
    this.timer = setInterval(() => this.sample(), intervalMs)
  }

  private sample (): void {
    const rss: Record<string, number> = {}
    for (const [name, pid] of Object.entries(this.pids)) {
      if (!pid) continue
      const bytes = rssBytes(pid)
      rss[name] = bytes
      this.last.set(name, bytes)
      if (!(bytes <= (this.peak.get(name) ?? 0))) this.peak.set(name, bytes)
    }
    this.samples.push({ atMs: performance.now() - this.started, rss })
  }

  stop (): Record<string, ProcessUsage> {
    clearInterval(this.timer)
    this.sample()
    const seconds = (performance.now() - this.started) / 1000
    const out: Record<string, ProcessUsage> = {}
    for (const [name, pid] of Object.entries(this.pids)) {
      if (!pid) continue
      out[name] = {
        cpuPercent: ((cpuSeconds(pid) - (this.startCpu.get(name) ?? Number.NaN)) / seconds) * 100,
        waitPercent: ((runQueueWaitSeconds(pid) - (this.startWait.get(name) ?? Number.NaN)) / seconds) * 100,
        peakRssBytes: this.peak.get(name) ?? Number.NaN,
        lastRssBytes: this.last.get(name) ?? Number.NaN,
      }
    }
    return out
  }
}

export function fdLimit (): number {
  try {
    return Number(execSync('ulimit -n', { encoding: 'utf8', shell: '/bin/bash' }).trim())
  } catch {
    return Number.NaN
  }
}

/** The machine line every bench prints under its table. */
export function machine (): string {
  const memGiB = (os.totalmem() / 1024 ** 3).toFixed(1)
  return `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ${memGiB} GiB RAM, node ${process.version}, ulimit -n ${fdLimit()}`
}

/** A full garbage collection in this process, so RSS deltas measure what is live. */
export function collectGarbage (): void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed) return exposed()
  v8.setFlagsFromString('--expose-gc')
  ;(vm.runInNewContext('gc') as () => void)()
}

/**
 * Bytes the young generation (V8's new space) holds in this process. Its size
 * is set by --max-semi-space-size and by how fast the process allocates, not
 * by how many devices it serves, so the connections bench sets it aside.
 */
export function youngGenerationBytes (): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0
}
