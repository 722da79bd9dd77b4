import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { pino, type Logger } from 'pino'
import type { HubConfig } from './config.js'
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
  /** Graceful stop: hub first (flushing points, saving state), then influxd and PostgreSQL; bounded by `deadlineMs`. */
  shutdown (deadlineMs?: number): Promise<void>
}

/** Credentials never reach the log, whichever component logs an object holding them. */
export const redactedPaths = [
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', '*.*.headers.authorization',
  'password', '*.password', 'secret', '*.secret', 'token', '*.token',
]

/** Starts influxd (managed, unless INFLUX_URL), PostgreSQL (managed, unless DATABASE_URL), the broker and the hub, as configured. */
export async function runHub (config: HubConfig, logger?: Logger): Promise<RunningHub> {
  const log = logger ?? pino({ level: config.LOG_LEVEL, redact: { paths: redactedPaths, censor: '[redacted]' } })
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
    const hub = await buildHub({ influxUrl, influxToken: config.INFLUX_TOKEN, database: config.INFLUX_DB, sql, logger: log, dataDir: config.DATA_DIR, tls, api: { adminToken: config.TRELLIS_ADMIN_TOKEN, trustProxy: config.TRUST_PROXY, corsOrigins: config.CORS_ORIGINS, maxConnections: config.HTTP_MAX_CONNECTIONS }, remoteBroker, redisUrl: config.REDIS_URL })
    const { httpUrl, mqttUrl, mqttsUrl } = await hub.listen({ httpPort: config.PORT, mqttPort: config.MQTT_PORT, mqttsPort: tls ? config.MQTTS_PORT : undefined, host: config.HOST })
    if (mqttsUrl) log.info({ mqtts: mqttsUrl }, 'MQTT over TLS listening')
    let stopping: Promise<void> | null = null
    return {
      hub,
      httpUrl,
      mqttUrl,
      // Shown in banners and logs: never with its password.
      influxUrl: withoutCredentials(influxUrl),
      influxd,
      postgres,
      log,
      shutdown (deadlineMs = 15_000) {
        stopping ??= (async () => {
          const deadline = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), deadlineMs).unref())
          const done = await Promise.race([hub.close().then(() => 'ok' as const), deadline])
          if (done === 'late') log.error({ deadlineMs }, 'the hub did not stop within the deadline; points still pending may be lost')
          await Promise.all([influxd?.stop(), postgres?.stop()])
        })()
        return stopping
      },
    }
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
