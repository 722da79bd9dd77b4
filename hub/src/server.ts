import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { HubConfig } from './config.js'
import { createLogger } from './logger.js'
import { hubCloseDeadlineMs, shutdownDeadlineMs } from './shutdown.js'
import { buildHub, type Hub } from './hub.js'
import { openPglite } from './registry/sql.js'
import { startInfluxd, type ManagedInfluxd } from './store/influxd.js'

export interface RunningHub {
  hub: Hub
  httpUrl: string
  mqttUrl: string
  influxUrl: string
  /** The managed influxd, when INFLUX_URL was not given. */
  influxd: ManagedInfluxd | null
  log: Logger
  /** Graceful stop: hub first (flushing points), bounded by `deadlineMs` (default `hubCloseDeadlineMs`, 10 s), then influxd. */
  shutdown (deadlineMs?: number): Promise<void>
  /** `shutdown()` with its default deadline: a `Service` for `runService`. */
  close (): Promise<void>
}

/** What the shutdown deadline leaves for influxd after the hub's close, less a second for exiting. */
const influxdStopDeadlineMs = shutdownDeadlineMs - hubCloseDeadlineMs - 1_000

const after = (ms: number) => new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), ms).unref())

/** Starts influxd (managed, unless INFLUX_URL), the registry, the broker and the hub, as configured. */
export async function runHub (config: HubConfig, logger?: Logger): Promise<RunningHub> {
  const log = logger ?? await createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT })
  let influxd: ManagedInfluxd | null = null
  let influxUrl = config.INFLUX_URL
  if (!influxUrl) {
    influxd = await startInfluxd({ dataDir: path.join(config.DATA_DIR, 'influxdb'), logger: log })
    influxUrl = influxd.url
  }
  try {
    const sql = await openPglite(path.join(config.DATA_DIR, 'registry'))
    const tls = config.TLS_CERT_FILE && config.TLS_KEY_FILE
      ? { cert: await readFile(config.TLS_CERT_FILE), key: await readFile(config.TLS_KEY_FILE) }
      : undefined
    const remoteBroker = config.BROKER_URL && config.SERVICE_SECRET
      ? { url: config.BROKER_URL, username: config.SERVICE_USERNAME, secret: config.SERVICE_SECRET }
      : undefined
    const hub = await buildHub({ influxUrl, database: config.INFLUX_DB, sql, logger: log, dataDir: config.DATA_DIR, tls, api: { adminToken: config.TRELLIS_ADMIN_TOKEN, trustProxy: config.TRUST_PROXY, corsOrigins: config.CORS_ORIGINS, maxConnections: config.HTTP_MAX_CONNECTIONS }, remoteBroker })
    const { httpUrl, mqttUrl, mqttsUrl } = await hub.listen({ httpPort: config.PORT, mqttPort: config.MQTT_PORT, mqttsPort: tls ? config.MQTTS_PORT : undefined, host: config.HOST })
    if (mqttsUrl) log.info({ mqtts: mqttsUrl }, 'MQTT over TLS listening')
    let stopping: Promise<void> | null = null
    const shutdown = (deadlineMs = hubCloseDeadlineMs): Promise<void> => {
      stopping ??= (async () => {
        const done = await Promise.race([hub.close().then(() => 'ok' as const), after(deadlineMs)])
        if (done === 'late') log.error({ deadlineMs }, 'the hub did not stop within the deadline; points still pending may be lost')
        if (!influxd) return
        // influxd flushes its WAL on SIGTERM in well under a second; what is left of the shutdown deadline bounds it.
        const stopped = influxd.stop()
        if (await Promise.race([stopped.then(() => 'ok' as const), after(influxdStopDeadlineMs)]) === 'late') {
          log.error({ deadlineMs: influxdStopDeadlineMs }, 'influxd did not stop in time; killing it')
          influxd.kill('SIGKILL')
          await stopped
        }
      })()
      return stopping
    }
    return { hub, httpUrl, mqttUrl, influxUrl, influxd, log, shutdown, close: () => shutdown() }
  } catch (err) {
    await influxd?.stop()
    throw err
  }
}
