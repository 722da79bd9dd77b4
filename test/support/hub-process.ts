/**
 * A hub (with its broker) in a process of its own, so a test can SIGKILL it
 * and start it again on the same ports and folders. Run with tsx:
 *   tsx test/support/hub-process.ts '{"influxUrl":…,"dataDir":…,"mqttPort":0,"httpPort":0}'
 * It prints one JSON line, `{"httpUrl","mqttUrl"}`, once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { buildHub, closeOnSignals, openPostgres, type HubOptions } from '@trellis/hub'
import { databaseForDir } from './postgres.js'

export interface HubProcessOptions {
  influxUrl: string
  /** Spool in `<dataDir>/spool`. */
  dataDir: string
  /** The registry. Default: the database of `dataDir` on the run's PostgreSQL, the same after a restart. */
  databaseUrl?: string
  /** Default 0: a free port. Pass the previous one to restart where devices expect it. */
  mqttPort?: number
  httpPort?: number
  /** Writer settings; flushIntervalMs defaults to 20 here. */
  writer?: HubOptions['writer']
  /** A broker apart from the hub (remote mode); default none, the broker runs in the hub process. */
  remoteBroker?: HubOptions['remoteBroker']
  /** Owner-side limits (JSON only), as buildHub takes them; default none, the hub's own defaults. */
  limits?: Pick<HubOptions, 'schedules' | 'commands' | 'stream'>
}

export interface HubProcess {
  readonly httpUrl: string
  readonly mqttUrl: string
  readonly mqttPort: number
  readonly httpPort: number
  readonly child: ChildProcess
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<number | string | null>
  kill (signal?: NodeJS.Signals): Promise<number | string | null>
  /** Runs a full garbage collection in the hub process: heap figures read after it are live memory only. */
  collectGarbage (): Promise<void>
}

const self = fileURLToPath(import.meta.url)

/**
 * A free 127.0.0.1 port below the ephemeral range (32768-60999 on Linux), where
 * neither `listen(0)` nor outgoing connections take ports.
 */
export async function restartablePort (): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error('no free port between 20000 and 32000')
}

/** Starts the hub in a child process and resolves once it listens. */
export async function startHubProcess (opts: HubProcessOptions, startTimeoutMs = 30_000): Promise<HubProcess> {
  // The hub is restarted on the same ports, so they must not come from the kernel's ephemeral range:
  // between the kill and the restart any outgoing connection could be handed a freed ephemeral port.
  opts = { ...opts, mqttPort: opts.mqttPort || await restartablePort(), httpPort: opts.httpPort || await restartablePort(), databaseUrl: opts.databaseUrl ?? (await databaseForDir(opts.dataDir)).url }
  // node itself, not the tsx launcher: a signal must reach the process that runs the hub.
  // The IPC channel only tells the hub when this test process is gone, so it never outlives its test.
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env } })
  child.channel?.unref()
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
  if (process.env.LOG_LEVEL) child.stderr!.pipe(process.stderr)
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
  let out = ''
  const urls = await new Promise<{ httpUrl: string, mqttUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the hub process did not start within ${startTimeoutMs} ms:\n${stderr}`)) }, startTimeoutMs)
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const line = out.split('\n').find((l) => l.startsWith('{"httpUrl"'))
      if (line) { clearTimeout(timer); resolve(JSON.parse(line)) }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`the hub process exited (${code}) before listening:\n${stderr}`)) })
  })
  return {
    ...urls,
    mqttPort: Number(new URL(urls.mqttUrl).port),
    httpPort: Number(new URL(urls.httpUrl).port),
    child,
    exited,
    async collectGarbage () {
      const seen = out.split('\n').filter((l) => l === 'gc').length
      child.kill('SIGUSR2')
      const deadline = Date.now() + 10_000
      while (out.split('\n').filter((l) => l === 'gc').length === seen) {
        if (Date.now() > deadline) throw new Error('the hub process did not report a garbage collection')
        await new Promise((resolve) => child.stdout!.once('data', resolve))
      }
    },
    async kill (signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return await exited
    },
  }
}

async function main (opts: HubProcessOptions): Promise<void> {
  // Orphaned (the test process died without killing us): go, as abruptly as a kill.
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'))
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' }, pino.destination(2))
  const hub = await buildHub({
    influxUrl: opts.influxUrl,
    sql: openPostgres(opts.databaseUrl!),
    dataDir: opts.dataDir,
    logger,
    writer: { flushIntervalMs: 20, ...opts.writer },
    remoteBroker: opts.remoteBroker,
    ...opts.limits,
  })
  const urls = await hub.listen({ httpPort: opts.httpPort ?? 0, mqttPort: opts.mqttPort ?? 0 })
  closeOnSignals(() => hub.close(), { logger })
  const gc = (globalThis as { gc?: () => void }).gc
  process.on('SIGUSR2', () => { gc?.(); process.stdout.write('gc\n') })
  process.stdout.write(`${JSON.stringify(urls)}\n`)
}

if (process.argv[1] === self) {
  main(JSON.parse(process.argv[2]) as HubProcessOptions).catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
