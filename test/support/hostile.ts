/**
 * The hostile-tenant harness: what one abusive account costs everyone else.
 *
 * While an abuse runs, a bystander (a second owner with one device of their
 * own) reads `GET /v1/devices/{id}` again and again, and the hub's resident
 * memory is sampled. The answer is the bystander's latency percentiles and
 * the hub's RSS growth over the abuse:
 *
 *   const target = hubTarget(hub)                      // a HubProcess (best) or a TestStack
 *   const bystander = await seatBystander(target)      // once per file: sign-up, claim, warm caches
 *   const { p99, rssDelta, failures, result } = await withBystander(target, bystander, async () => {
 *     // …the abuse, bounded in count and time; its return value comes back as `result`…
 *   })
 *   expect(failures).toBe(0)
 *   expect(p99).toBeLessThan(hostileBudget.p99Ms)
 *   expect(rssDelta).toBeLessThan(64 * MiB)
 *
 * A hub in a process of its own (`startHubProcess`) gives the hub's own RSS,
 * read from /proc/<pid>/status. A hub in the test process (`startStack`)
 * gives `process.memoryUsage().rss`, which includes the test and its clients.
 *
 * The bystander's requests run one after another with `pauseMs` between them,
 * each with its own deadline; one that fails or misses the deadline counts in
 * `failures` and with its full wait in the latencies. The loop ends when the
 * abuse settles, or after `maxSamples` requests.
 */
import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { apiClient, seedFleet } from './api.js'

export const MiB = 1024 * 1024

/**
 * The bystander's latency bound. The bound is 50 ms p99, which the
 * bench holds (`npm run bench -- abuse`). `npm test` runs on a 2-core
 * machine shared with other suites (load averages of 8 per core were seen
 * there, and 300 ms p99 with no abuse at all), so tests get a margin: 1000 ms
 * unless HOSTILE_P99_MS says otherwise. An abuse that is not bounded (a
 * stalled event loop, a hub at 100% CPU) costs several seconds, still far
 * above it.
 */
export const hostileBudget = {
  p99Ms: Number(process.env.HOSTILE_P99_MS ?? 1000),
  /** The issue's own bound, for the bench. */
  strictP99Ms: 50,
}

/** Where the hub answers, and the process whose memory is its own (none: the hub runs in this process). */
export interface HubTarget {
  httpUrl: string
  pid?: number
}

/** A HubProcess or a TestStack as a target. */
export function hubTarget (hub: { httpUrl: string, child?: { pid?: number } }): HubTarget {
  return { httpUrl: hub.httpUrl, pid: hub.child?.pid }
}

/** A second owner and the device they read. */
export interface Bystander {
  token: string
  deviceId: string
}

/** Signs up a maker and an owner with one claimed device, and warms the device's read path. */
export async function seatBystander (target: HubTarget): Promise<Bystander> {
  const api = apiClient(target.httpUrl)
  const fleet = await seedFleet(api, { makerName: 'Bystander Appliances', email: `bystander-${Math.random().toString(36).slice(2)}@example.com` })
  const bystander = { token: fleet.ownerToken, deviceId: fleet.devices[0].id }
  for (let i = 0; i < 5; i++) await readOnce(target, bystander, 5_000)
  return bystander
}

export interface BystanderOptions {
  /**
   * Pause between two reads, in ms. Default 25: the bystander reads at most
   * 40 times a second, within the per-account request limit (50/s).
   */
  pauseMs?: number
  /** One read's deadline, in ms; a read past it is a failure. Default 5000. */
  requestTimeoutMs?: number
  /** Reads at most, however long the abuse lasts. Default 20 000. */
  maxSamples?: number
  /** RSS sampling period, in ms. Default 100. */
  rssEveryMs?: number
}

export interface BystanderReport<T = void> {
  /** What the abuse returned. */
  result: T
  /** Reads made, and how many failed (not 200, or past the deadline). */
  samples: number
  failures: number
  /** Latency of the bystander's reads, in ms. */
  p50: number
  p99: number
  max: number
  /** Hub RSS when the abuse started, its peak while it ran, and the difference, in bytes. */
  rssBefore: number
  rssPeak: number
  rssDelta: number
  durationMs: number
}

/** Runs `abuse` while the bystander reads its device; see the file header. */
export async function withBystander<T> (target: HubTarget, bystander: Bystander, abuse: () => Promise<T>, opts: BystanderOptions = {}): Promise<BystanderReport<T>> {
  return await measure(target, bystander, abuse, opts)
}

/** The bystander's figures with no abuse: `samples` reads, one after another. */
export async function bystanderAtRest (target: HubTarget, bystander: Bystander, samples = 200, opts: BystanderOptions = {}): Promise<BystanderReport<null>> {
  return await measure(target, bystander, null, { ...opts, maxSamples: samples })
}

/** Without an abuse, reads `maxSamples` times; with one, until it settles. */
async function measure<T> (target: HubTarget, bystander: Bystander, abuse: (() => Promise<T>) | null, opts: BystanderOptions): Promise<BystanderReport<T>> {
  const pauseMs = opts.pauseMs ?? 25
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5_000
  const maxSamples = opts.maxSamples ?? 20_000
  const rssBefore = await residentBytes(target)
  let rssPeak = rssBefore
  let done = false
  const rssTimer = setInterval(() => {
    void residentBytes(target).then((rss) => { rssPeak = Math.max(rssPeak, rss) }, () => {})
  }, opts.rssEveryMs ?? 100)
  const latencies: number[] = []
  let failures = 0
  const reader = (async () => {
    while (!done && latencies.length < maxSamples) {
      const { ms, ok } = await readOnce(target, bystander, requestTimeoutMs)
      latencies.push(ms)
      if (!ok) failures++
      await new Promise((resolve) => setTimeout(resolve, pauseMs))
    }
  })()
  const started = performance.now()
  let result = null as T
  try {
    if (abuse) result = await abuse()
    else await reader
  } finally {
    done = true
    await reader
    clearInterval(rssTimer)
  }
  const durationMs = performance.now() - started
  rssPeak = Math.max(rssPeak, await residentBytes(target).catch(() => rssPeak))
  const sorted = latencies.sort((a, b) => a - b)
  return {
    result,
    samples: sorted.length,
    failures,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? 0,
    rssBefore,
    rssPeak,
    rssDelta: rssPeak - rssBefore,
    durationMs,
  }
}

/** The hub's resident set in bytes: its own process's, or this process's when it runs here. */
export async function residentBytes (target: HubTarget): Promise<number> {
  if (target.pid === undefined) return process.memoryUsage().rss
  const status = await readFile(`/proc/${target.pid}/status`, 'utf8')
  const line = status.split('\n').find((l) => l.startsWith('VmRSS:'))
  if (!line) throw new Error(`no VmRSS for process ${target.pid}`)
  return Number(line.replace(/\D+/g, '')) * 1024
}

async function readOnce (target: HubTarget, bystander: Bystander, timeoutMs: number): Promise<{ ms: number, ok: boolean }> {
  const t0 = performance.now()
  try {
    const res = await fetch(`${target.httpUrl}/v1/devices/${bystander.deviceId}`, {
      headers: { authorization: `Bearer ${bystander.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.arrayBuffer()
    return { ms: performance.now() - t0, ok: res.status === 200 }
  } catch {
    return { ms: performance.now() - t0, ok: false }
  }
}

function quantile (sorted: number[], q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}
