import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, writeFile, access, readFile, rm } from 'node:fs/promises'
import { constants } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import { pino, type Logger } from 'pino'
import { startWatchdog } from '../watchdog.js'

export interface ManagedInfluxdOptions {
  /** Where influxd keeps meta, data and WAL. */
  dataDir: string
  /** HTTP port on 127.0.0.1. Default 0: a free ephemeral port. */
  port?: number
  /** Path to the influxd binary. Default: found on PATH, then /usr/bin and /usr/sbin. */
  binary?: string
  /** Give up waiting for /ping after this many ms. Default 30000. */
  startTimeoutMs?: number
  /** Restart influxd when it exits unexpectedly. Default true. */
  supervise?: boolean
  /** Require credentials (`auth-enabled`); create the first admin through the API. Default false. */
  authEnabled?: boolean
  /** Serve HTTPS with this PEM certificate and key (files). Default: plain HTTP. */
  https?: { certFile: string, keyFile: string }
  logger?: Logger
}

export interface ManagedInfluxd {
  /** `http://127.0.0.1:<port>`, or `https://` when started with `https` */
  readonly url: string
  readonly port: number
  readonly pid: number | undefined
  /** Stops influxd (SIGTERM, then SIGKILL after 10 s). */
  stop (): Promise<void>
  /** Kills influxd abruptly, as a crash would; the supervisor restarts it if enabled. */
  kill (signal?: NodeJS.Signals): void
  /** Resolves when influxd answers /ping again (after a restart). */
  ready (): Promise<void>
}

export class InfluxdMissingError extends Error {
  constructor () {
    super([
      'influxd (InfluxDB 1.x) is not installed and could not be found on PATH.',
      'Install it with one of:',
      '  sudo apt-get install influxdb          # Debian/Ubuntu, then run npm start again',
      '  bash scripts/ensure-influxd.sh         # does the same, when you are root or have sudo',
      '  docker compose up influxdb             # and set INFLUX_URL=http://127.0.0.1:8086',
      'or point Trellis at an existing InfluxDB 1.x with INFLUX_URL.',
    ].join('\n'))
  }
}

/** influxd that stayed up this long counts as healthy again. */
const stableAfterMs = 60_000

const searchPaths = ['/usr/bin/influxd', '/usr/sbin/influxd', '/usr/local/bin/influxd']

export async function findInfluxd (): Promise<string> {
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'influxd')),
    ...searchPaths,
  ]
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  throw new InfluxdMissingError()
}

export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

function config (dir: string, httpPort: number, rpcPort: number, opts: ManagedInfluxdOptions): string {
  // Loopback only; no usage reporting, no _internal monitoring database, quiet logs.
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${dir}/meta"
  logging-enabled = false

[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  index-version = "tsi1"
  max-values-per-tag = 100000

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  suppress-write-log = true
  max-body-size = 50000000
  auth-enabled = ${opts.authEnabled === true}
  https-enabled = ${opts.https !== undefined}
${opts.https ? `  https-certificate = "${opts.https.certFile}"\n  https-private-key = "${opts.https.keyFile}"\n` : ''}
[logging]
  level = "warn"
  suppress-logo = true

[subscriber]
  enabled = false

[continuous_queries]
  log-enabled = false
  run-interval = "10s"
`
}

/**
 * Starts an influxd child bound to 127.0.0.1 with its data under `dataDir`,
 * waits until it answers, and restarts it with backoff if it dies.
 */
export async function startInfluxd (opts: ManagedInfluxdOptions): Promise<ManagedInfluxd> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'influxd' })
  const binary = opts.binary ?? await findInfluxd()
  const dir = path.resolve(opts.dataDir)
  await mkdir(dir, { recursive: true })
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000
  const supervise = opts.supervise ?? true
  const scheme = opts.https ? 'https' : 'http'

  let port = opts.port ?? 0
  let child: ChildProcess | undefined
  const pidFile = path.join(dir, 'influxd.pid')
  await reapOrphan(pidFile, log)
  // Whatever way this process ends, influxd must not outlive it: at exit, and
  // through the watchdog when this process is killed and no exit hook runs.
  const killOnExit = () => { child?.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const watchdog = startWatchdog('trellis-influxd-watchdog', 'TERM')
  let stopping = false
  let restarts = 0
  let upSince = 0
  let readyPromise: Promise<void>
  let stderrTail = ''

  const launch = async (): Promise<void> => {
    // A port picked now may be taken before influxd binds it; retry with another.
    for (let attempt = 1; ; attempt++) {
      const httpPort = port || await freePort()
      const rpcPort = await freePort()
      const confPath = path.join(dir, 'influxdb.conf')
      await writeFile(confPath, config(dir, httpPort, rpcPort, opts))
      stderrTail = ''
      // Its own process group: a Ctrl-C in the terminal must not stop influxd
      // before the hub has flushed its last points into it.
      const proc = spawn(binary, ['-config', confPath], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
      if (proc.pid) {
        watchdog.watch(proc.pid)
        await writeFile(pidFile, String(proc.pid))
      }
      proc.stderr!.on('data', (chunk: Buffer) => { stderrTail = (stderrTail + chunk.toString()).slice(-4000) })
      child = proc
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
      const up = await Promise.race([
        waitForPing(`${scheme}://127.0.0.1:${httpPort}`, startTimeoutMs).then(() => true, () => false),
        exited.then(() => false),
      ])
      if (up) {
        port = httpPort
        upSince = Date.now()
        proc.once('exit', (code, signal) => onExit(proc, code, signal))
        log.info({ port, pid: proc.pid, dir }, 'influxd is up')
        return
      }
      proc.kill('SIGKILL')
      if (attempt >= 3 || opts.port) {
        throw new Error(`influxd did not start (config ${confPath}):\n${stderrTail.trim() || 'no output'}`)
      }
      log.warn({ attempt, stderr: stderrTail.slice(-500) }, 'influxd did not start; retrying on other ports')
    }
  }

  const onExit = (proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (stopping || proc !== child) return
    // Only a crash after a good run starts the backoff over: a crash loop keeps backing off.
    if (Date.now() - upSince > stableAfterMs) restarts = 0
    restarts++
    const delay = Math.min(30_000, 250 * 2 ** Math.min(restarts, 7))
    if (!supervise) return log.error({ code, signal, stderr: stderrTail.slice(-500) }, 'influxd exited; not supervised, so not restarted')
    log.error({ code, signal, restarts, delayMs: delay, stderr: stderrTail.slice(-500) }, 'influxd exited; restarting')
    readyPromise = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        if (stopping) return resolve()
        const keep = port
        launch().then(() => {
          if (port !== keep) log.warn({ port }, 'influxd came back on another port')
          resolve()
        }, reject)
      }, delay).unref()
    })
    readyPromise.catch((err) => log.error({ err }, 'influxd could not be restarted'))
  }

  readyPromise = launch()
  try {
    await readyPromise
  } catch (err) {
    process.off('exit', killOnExit)
    await watchdog.release()
    throw err
  }

  return {
    get url () { return `${scheme}://127.0.0.1:${port}` },
    get port () { return port },
    get pid () { return child?.pid },
    ready: () => readyPromise,
    kill (signal = 'SIGKILL') { child?.kill(signal) },
    async stop () {
      stopping = true
      process.off('exit', killOnExit)
      const proc = child
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
          proc.once('exit', () => { clearTimeout(timer); resolve() })
          proc.kill('SIGTERM')
        })
      }
      await watchdog.release()
      await rm(pidFile, { force: true })
    },
  }
}

/**
 * An influxd left running by a hub that was killed (SIGKILL gives no chance to
 * clean up) still holds the data folder's locks: stop it before starting anew.
 */
async function reapOrphan (pidFile: string, log: Logger): Promise<void> {
  let pid: number
  try {
    pid = Number(await readFile(pidFile, 'utf8'))
  } catch {
    return
  }
  if (!Number.isInteger(pid) || pid <= 1) return
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    if (!cmdline.includes('influxd') || !cmdline.includes(path.dirname(pidFile))) return
  } catch {
    return // not running any more
  }
  log.warn({ orphanPid: pid }, 'stopping an influxd left over from an earlier run')
  try { process.kill(pid, 'SIGTERM') } catch { return }
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    try { process.kill(pid, 0) } catch { return }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  try { process.kill(pid, 'SIGKILL') } catch {}
}

async function waitForPing (url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let delay = 25
  while (Date.now() < deadline) {
    if (await pings(`${url}/ping`)) return
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(250, delay * 2)
  }
  throw new Error(`influxd at ${url} did not answer /ping within ${timeoutMs} ms`)
}

/** One /ping. Over HTTPS the certificate is not checked: this is our own child on loopback, asked only whether it is up. */
async function pings (url: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get
    const req = get(url, { timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode === 204)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}
