// Some 380 lines, over the house's ~300, as store/influxd.ts is its pattern:
// finding the binaries, running them as the postgres user when root, initdb,
// the watchdog that outlives a SIGKILLed hub, supervision with backoff and the
// orphan reaper are one server's life, and each step needs the others' paths
// and child process. Tested as one: test/hub/managed-postgres.int.test.ts.
import { spawn, type ChildProcess } from 'node:child_process'
import { access, chmod, chown, mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { constants } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { pino, type Logger } from 'pino'
import { startWatchdog } from '../watchdog.js'

export interface ManagedPostgresOptions {
  /** The cluster's folder (PGDATA); made with `initdb` when it holds none. */
  dataDir: string
  /** Folder of `initdb` and `postgres`. Default: the newest /usr/lib/postgresql/<version>/bin, then PATH. */
  binDir?: string
  /** Most connections the server takes. Default 12: a hub opens at most 5, and initdb's checks one. */
  maxConnections?: number
  /** Shared buffer cache. Default '8MB': the registry's working set is small, and the OS caches its files as well. */
  sharedBuffers?: string
  /** fsync and full page writes on. Default true; tests turn it off for speed, as nothing of theirs must outlive a crash. */
  durable?: boolean
  /** Remove `dataDir` once the server has stopped, also when this process dies. Default false. */
  ephemeral?: boolean
  /** Give up waiting for the server to take connections after this many ms. Default 30000. */
  startTimeoutMs?: number
  /** Restart the server when it exits unexpectedly. Default true. */
  supervise?: boolean
  logger?: Logger
}

/** How to reach the managed server: its unix socket folder, as user `trellis`, database `trellis`. */
export interface PostgresConnection {
  host: string
  port: number
  user: string
  database: string
}

export interface ManagedPostgres {
  readonly connection: PostgresConnection
  /** The same as a `DATABASE_URL`, e.g. `postgresql://trellis@%2Fdata%2Fpostgres/trellis`. */
  readonly url: string
  readonly pid: number | undefined
  /** The watchdog's pid: it stops the server if this process dies, however it dies. */
  readonly watchdogPid: number | undefined
  /** Stops the server (a fast shutdown: sessions rolled back, a checkpoint written), and the watchdog. */
  stop (): Promise<void>
  /** Kills the server abruptly, as a crash would; the supervisor restarts it if enabled. */
  kill (signal?: NodeJS.Signals): void
  /** Resolves when the server takes connections again (after a restart; the supervisor tries until it is, or until `stop()`). */
  ready (): Promise<void>
}

export class PostgresMissingError extends Error {
  constructor () {
    super([
      'PostgreSQL (initdb and postgres) is not installed: Trellis runs its registry on a PostgreSQL server it manages.',
      'Install it with one of:',
      '  sudo apt-get install postgresql         # Debian/Ubuntu, then run npm start again',
      '  bash scripts/ensure-postgres.sh         # does the same, when you are root or have sudo',
      'or point Trellis at an existing PostgreSQL with DATABASE_URL=postgresql://user:password@host:5432/trellis.',
    ].join('\n'))
  }
}

const USER = 'trellis'
const DATABASE = 'trellis'
/** Only names the socket file: the server listens on no TCP port. */
const SOCKET_PORT = 5432
/** A server that stayed up this long counts as healthy again. */
const stableAfterMs = 60_000

export async function findPostgresBin (): Promise<string> {
  const candidates: string[] = []
  try {
    const versions = (await readdir('/usr/lib/postgresql')).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`))
  } catch {}
  candidates.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean))
  for (const dir of candidates) {
    try {
      await access(path.join(dir, 'postgres'), constants.X_OK)
      await access(path.join(dir, 'initdb'), constants.X_OK)
      return dir
    } catch {}
  }
  throw new PostgresMissingError()
}

/**
 * PostgreSQL refuses to run as root: then it runs as the `postgres` user the
 * OS package creates (or `nobody`), and its folder belongs to that user.
 */
async function serviceUser (): Promise<{ uid: number, gid: number, name: string } | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const passwd = await readFile('/etc/passwd', 'utf8')
  for (const name of ['postgres', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`))
    if (line) {
      const [, , uid, gid] = line.split(':')
      return { uid: Number(uid), gid: Number(gid), name }
    }
  }
  throw new Error('running as root, and there is no postgres or nobody user to run PostgreSQL as (it refuses root)')
}

/** Settings for a small registry: a few connections, small caches, no replication, no parallel workers, no JIT. */
function settings (o: { socketDir: string, maxConnections: number, sharedBuffers: string, durable: boolean }): string[] {
  const s: Record<string, string | number> = {
    listen_addresses: '',
    unix_socket_directories: o.socketDir,
    unix_socket_permissions: '0700',
    max_connections: o.maxConnections,
    superuser_reserved_connections: 1,
    shared_buffers: o.sharedBuffers,
    huge_pages: 'off',
    temp_buffers: '1MB',
    work_mem: '2MB',
    maintenance_work_mem: '16MB',
    jit: 'off',
    wal_level: 'minimal',
    max_wal_senders: 0,
    max_worker_processes: 0,
    max_parallel_workers: 0,
    max_parallel_workers_per_gather: 0,
    max_parallel_maintenance_workers: 0,
    max_logical_replication_workers: 0,
    autovacuum_max_workers: 1,
    // The background writer would touch every shared buffer (RSS) to write ahead of checkpoints; the registry's writes are few.
    bgwriter_lru_maxpages: 0,
    logging_collector: 'off',
    log_min_messages: 'warning',
    timezone: 'UTC',
    ...(o.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
  }
  return Object.entries(s).flatMap(([k, v]) => ['-c', `${k}=${v}`])
}

/**
 * Stays up as long as the pipe from this process is open. Every line it reads
 * is the server's current pid; at end of input (a stop, or this process's
 * death, even by SIGKILL) it shuts that server down fast, kills it if it is
 * still up after 10 s, and removes the folder when asked to. Once this process
 * is gone nobody reaps the server, so a zombie counts as stopped.
 */

/**
 * As root, the server runs as `user`, who must pass through every folder
 * above its own. Trellis's data folder (the one holding the cluster's) is
 * opened for passing through only (o+x: no listing), as a mkdtemp or
 * `mkdir -m 700` DATA_DIR would block it; a closed folder above that is not
 * Trellis's to change, and is named in the error.
 */
async function letThrough (dir: string, user: { uid: number, gid: number, name: string }, log: Logger): Promise<void> {
  const passable = (s: { mode: number, uid: number, gid: number }) =>
    (s.mode & 0o001) !== 0 || (s.uid === user.uid && (s.mode & 0o100) !== 0) || (s.gid === user.gid && (s.mode & 0o010) !== 0)
  const own = path.dirname(dir)
  const ownStat = await stat(own)
  if (!passable(ownStat)) {
    await chmod(own, (ownStat.mode & 0o7777) | 0o001)
    log.info({ dir: own, user: user.name }, 'data folder opened for passing through (o+x), for PostgreSQL\'s user')
  }
  for (let folder = path.dirname(own); ; folder = path.dirname(folder)) {
    const s = await stat(folder)
    if (!passable(s)) {
      throw new Error(`PostgreSQL runs as the ${user.name} user here (it refuses root), and that user cannot pass through ${folder} (mode ${(s.mode & 0o777).toString(8)}) to reach ${dir}: allow it (chmod o+x ${folder}), or choose a DATA_DIR outside it, or set DATABASE_URL`)
    }
    if (folder === path.dirname(folder)) return
  }
}

async function run (binary: string, args: string[], user: { uid: number, gid: number } | undefined): Promise<{ code: number | null, output: string }> {
  return await new Promise((resolve, reject) => {
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(user ? { uid: user.uid, gid: user.gid } : {}), env: { ...process.env, LC_ALL: 'C' } })
    let output = ''
    proc.stdout!.on('data', (c: Buffer) => { output += c.toString() })
    proc.stderr!.on('data', (c: Buffer) => { output += c.toString() })
    proc.once('error', reject)
    proc.once('exit', (code) => resolve({ code, output }))
  })
}

/**
 * Starts a PostgreSQL server with its cluster in `dataDir` (made by initdb on
 * first start), reachable only through a unix socket in that folder, waits
 * until it takes connections, makes the `trellis` database, and restarts the
 * server with backoff if it dies. A watchdog process stops it if this process
 * dies without calling `stop()`.
 */
export async function startPostgres (opts: ManagedPostgresOptions): Promise<ManagedPostgres> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'postgres' })
  const binDir = opts.binDir ?? await findPostgresBin()
  const dir = path.resolve(opts.dataDir)
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000
  const supervise = opts.supervise ?? true
  const user = await serviceUser()
  if (Buffer.byteLength(path.join(dir, `.s.PGSQL.${SOCKET_PORT}`)) > 100) {
    throw new Error(`the PostgreSQL folder ${dir} is too long a path for its unix socket (at most about 88 characters): choose a shorter DATA_DIR`)
  }

  // The parents with the usual mode (the service user must pass through them), the cluster's own folder private.
  await mkdir(path.dirname(dir), { recursive: true })
  await mkdir(dir, { recursive: true, mode: 0o700 })
  if (user) await letThrough(dir, user, log)
  let initialized = true
  try { await access(path.join(dir, 'PG_VERSION')) } catch { initialized = false }
  if (!initialized) {
    if (user) await chown(dir, user.uid, user.gid)
    await chmod(dir, 0o700)
    const init = await run(path.join(binDir, 'initdb'), [
      '-D', dir, '-U', USER, '--auth-local=trust', '--auth-host=reject', '-E', 'UTF8', '--locale=C', '--no-instructions',
      ...(opts.durable === false ? ['--no-sync'] : []),
    ], user)
    if (init.code !== 0) {
      throw new Error(`initdb failed in ${dir}:\n${init.output.trim()}`)
    }
    log.info({ dir }, 'PostgreSQL cluster created')
  }

  const connection: PostgresConnection = { host: dir, port: SOCKET_PORT, user: USER, database: DATABASE }
  const url = `postgresql://${USER}@${encodeURIComponent(dir)}:${SOCKET_PORT}/${DATABASE}`
  await reapOrphan(dir, log)

  // PostgreSQL's fast shutdown is SIGINT; a throwaway cluster's folder goes with it.
  const watchdog = startWatchdog('trellis-postgres-watchdog', 'INT', opts.ephemeral ? dir : '')

  let child: ChildProcess | undefined
  let stopping = false
  let restarts = 0
  let upSince = 0
  let stderrTail = ''
  let readyPromise: Promise<void>

  const launch = async (): Promise<void> => {
    stderrTail = ''
    // Its own process group: a Ctrl-C in the terminal must not stop the registry before the hub has saved its state.
    const proc = spawn(path.join(binDir, 'postgres'), ['-D', dir, ...settings({
      socketDir: dir,
      maxConnections: opts.maxConnections ?? 12,
      sharedBuffers: opts.sharedBuffers ?? '8MB',
      durable: opts.durable ?? true,
    })], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, ...(user ? { uid: user.uid, gid: user.gid } : {}), env: { ...process.env, LC_ALL: 'C' } })
    proc.stderr!.on('data', (c: Buffer) => { stderrTail = (stderrTail + c.toString()).slice(-4000) })
    if (proc.pid) watchdog.watch(proc.pid)
    child = proc
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    const up = await Promise.race([
      waitForConnections({ ...connection, database: 'postgres' }, startTimeoutMs).then(() => true, () => false),
      exited.then(() => false),
    ])
    if (!up) {
      proc.kill('SIGKILL')
      throw new Error(`PostgreSQL did not start in ${dir}:\n${stderrTail.trim() || 'no output'}`)
    }
    upSince = Date.now()
    proc.once('exit', (code, signal) => onExit(proc, code, signal))
    await ensureDatabase(connection)
    log.info({ pid: proc.pid, dir }, 'PostgreSQL is up')
  }

  const onExit = (proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (stopping || proc !== child) return
    if (Date.now() - upSince > stableAfterMs) restarts = 0
    restarts++
    const delay = Math.min(30_000, 250 * 2 ** Math.min(restarts, 7))
    if (!supervise) return log.error({ code, signal, stderr: stderrTail.slice(-500) }, 'PostgreSQL exited; not supervised, so not restarted')
    log.error({ code, signal, restarts, delayMs: delay, stderr: stderrTail.slice(-500) }, 'PostgreSQL exited; restarting')
    // Until it is up again: a restart can fail while the killed server's backends still hold the folder.
    readyPromise = new Promise<void>((resolve) => {
      const attempt = (wait: number) => setTimeout(() => {
        if (stopping) return resolve()
        launch().then(resolve, (err: Error) => {
          restarts++
          const next = Math.min(30_000, 250 * 2 ** Math.min(restarts, 7))
          log.error({ err, restarts, delayMs: next }, 'PostgreSQL could not be restarted; trying again')
          attempt(next)
        })
      }, wait).unref()
      attempt(delay)
    })
  }

  readyPromise = launch()
  try {
    await readyPromise
  } catch (err) {
    await watchdog.release()
    throw err
  }

  return {
    connection,
    url,
    get pid () { return child?.pid },
    get watchdogPid () { return watchdog.pid },
    ready: () => readyPromise,
    kill (signal = 'SIGKILL') { child?.kill(signal) },
    async stop () {
      if (stopping) return await watchdog.release()
      stopping = true
      // The watchdog does what it would do if this process died: one way to stop, tested by both.
      await watchdog.release()
      // The watchdog gives up after 10 s; a server that outlived it still goes.
      const proc = child
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => { proc.once('exit', () => resolve()); proc.kill('SIGKILL') })
      }
    },
  }
}

async function waitForConnections (connection: PostgresConnection, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let delay = 20
  for (;;) {
    const client = new pg.Client({ ...connection, connectionTimeoutMillis: 1000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('SELECT 1')
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
    } finally {
      await client.end().catch(() => {})
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(200, delay * 2)
  }
}

async function ensureDatabase (connection: PostgresConnection): Promise<void> {
  const client = new pg.Client({ ...connection, database: 'postgres' })
  client.on('error', () => {})
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [connection.database])
    if (!rowCount) await client.query(`CREATE DATABASE ${connection.database}`)
  } finally {
    await client.end()
  }
}

/**
 * A server left running by an earlier run whose watchdog was killed too
 * still holds the folder (postmaster.pid): stop it before starting anew.
 */
async function reapOrphan (dir: string, log: Logger): Promise<void> {
  let pid: number
  try {
    pid = Number((await readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  } catch {
    return
  }
  if (!Number.isInteger(pid) || pid <= 1) return
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    if (!cmdline.includes('postgres') || !cmdline.includes(dir)) return
  } catch {
    return
  }
  log.warn({ orphanPid: pid }, 'stopping a PostgreSQL left over from an earlier run')
  try { process.kill(pid, 'SIGINT') } catch { return }
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    try { process.kill(pid, 0) } catch { return }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  try { process.kill(pid, 'SIGKILL') } catch {}
}
