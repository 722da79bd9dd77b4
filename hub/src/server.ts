import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { HubConfig } from './config.js'
import { createLogger } from './logger.js'
import { hubCloseDeadlineMs, shutdownDeadlineMs } from './shutdown.js'
import { buildHub, type Hub } from './hub.js'
import { openPostgres } from './registry/postgres.js'
import { startPostgres, type ManagedPostgres } from './registry/postgres-server.js'
import { startInfluxd, type ManagedInfluxd } from './store/influxd.js'

export interface RunningHub {
  hub: Hub
  httpUrl: string
  mqttUrl: string
  influxUrl: string
  /** The managed influxd, when INFLUX_URL was not given. */
  influxd: ManagedInfluxd | null
  /** The managed PostgreSQL, when DATABASE_URL was not given. */
  postgres: ManagedPostgres | null
  log: Logger
  /** Graceful stop: hub first (flushing points, saving state), bounded by `deadlineMs` (default `hubCloseDeadlineMs`, 10 s), then influxd and PostgreSQL. */
  shutdown (deadlineMs?: number): Promise<void>
  /** `shutdown()` with its default deadline: a `Service` for `runService`. */
  close (): Promise<void>
}

export { redactedPaths } from './logger.js'

/** What the shutdown deadline leaves for influxd and PostgreSQL after the hub's close, less a second for exiting. */
const serverStopDeadlineMs = shutdownDeadlineMs - hubCloseDeadlineMs - 1_000

const after = (ms: number) => new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), ms).unref())

/** Starts influxd (managed, unless INFLUX_URL), PostgreSQL (managed, unless DATABASE_URL), the broker and the hub, as configured. */
export async function runHub (config: HubConfig, logger?: Logger): Promise<RunningHub> {
  const log = logger ?? await createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT })
  let influxd: ManagedInfluxd | null = null
  let influxUrl = config.INFLUX_URL
  if (!influxUrl) {
    influxd = await startInfluxd({ dataDir: path.join(config.DATA_DIR, 'influxdb'), logger: log })
    influxUrl = influxd.url
  }
  let postgres: ManagedPostgres | null = null
  try {
    if (!config.DATABASE_URL) postgres = await startPostgres({ dataDir: path.join(config.DATA_DIR, 'postgres'), logger: log })
    const sql = openPostgres(config.DATABASE_URL ?? postgres!.connection, { logger: log })
    const tls = config.TLS_CERT_FILE && config.TLS_KEY_FILE
      ? { cert: await readFile(config.TLS_CERT_FILE), key: await readFile(config.TLS_KEY_FILE) }
      : undefined
    const remoteBroker = config.BROKER_URL && config.SERVICE_SECRET
      ? { url: config.BROKER_URL, username: config.SERVICE_USERNAME, secret: config.SERVICE_SECRET }
      : undefined
    const hub = await buildHub({ influxUrl, influxToken: config.INFLUX_TOKEN, database: config.INFLUX_DB, sql, logger: log, dataDir: config.DATA_DIR, tls, api: { adminToken: config.TRELLIS_ADMIN_TOKEN, trustProxy: config.TRUST_PROXY, corsOrigins: config.CORS_ORIGINS, maxConnections: config.HTTP_MAX_CONNECTIONS }, remoteBroker })
    const { httpUrl, mqttUrl, mqttsUrl } = await hub.listen({ httpPort: config.PORT, mqttPort: config.MQTT_PORT, mqttsPort: tls ? config.MQTTS_PORT : undefined, host: config.HOST })
    if (mqttsUrl) log.info({ mqtts: mqttsUrl }, 'MQTT over TLS listening')
    let stopping: Promise<void> | null = null
    // influxd flushes its WAL on SIGTERM, PostgreSQL checkpoints on SIGINT, each in well under a second; what is left of the shutdown deadline bounds them.
    const stopServer = async (name: string, server: { stop (): Promise<void>, kill (signal?: NodeJS.Signals): void } | null) => {
      if (!server) return
      const stopped = server.stop()
      if (await Promise.race([stopped.then(() => 'ok' as const), after(serverStopDeadlineMs)]) === 'late') {
        log.error({ deadlineMs: serverStopDeadlineMs }, `${name} did not stop in time; killing it`)
        server.kill('SIGKILL')
        await stopped
      }
    }
    const shutdown = (deadlineMs = hubCloseDeadlineMs): Promise<void> => {
      stopping ??= (async () => {
        const done = await Promise.race([hub.close().then(() => 'ok' as const), after(deadlineMs)])
        if (done === 'late') log.error({ deadlineMs }, 'the hub did not stop within the deadline; points still pending may be lost')
        await Promise.all([stopServer('influxd', influxd), stopServer('PostgreSQL', postgres)])
      })()
      return stopping
    }
    // influxUrl is shown in banners and logs: never with its password.
    return { hub, httpUrl, mqttUrl, influxUrl: withoutCredentials(influxUrl), influxd, postgres, log, shutdown, close: () => shutdown() }
  } catch (err) {
    await Promise.all([influxd?.stop(), postgres?.stop()])
    throw err
  }
}

function withoutCredentials (url: string): string {
  const u = new URL(url)
  if (!u.username && !u.password) return url
  u.username = ''
  u.password = ''
  return u.toString().replace(/\/$/, '')
}
