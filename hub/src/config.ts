import path from 'node:path'
import { z } from 'zod'

const Port = z.coerce.number().int().min(0).max(65535)
/** pino level: fatal, error, warn, info, debug, trace, silent. Default info. */
const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
/** Log lines: `pretty` (pino-pretty, for people), `json` (one object a line, for collectors), or `auto`: pretty when the log goes to a terminal. Default auto. */
const LogFormat = z.enum(['auto', 'pretty', 'json']).default('auto')

/** Configuration from the environment, each with its default. */
export const HubConfig = z.object({
  /** HTTP API port. */
  PORT: Port.default(8080),
  /** MQTT (TCP) port. */
  MQTT_PORT: Port.default(1883),
  /** Address the HTTP and MQTT listeners bind; 0.0.0.0 to serve other machines. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Where the registry, the managed influxd, the spool of unwritten points and demo state live. */
  DATA_DIR: z.string().min(1).default('.data'),
  /** An existing InfluxDB 1.x; unset: start and supervise a managed influxd under DATA_DIR. */
  INFLUX_URL: z.url().optional(),
  /** InfluxDB API token, sent as `Authorization: Token …` (InfluxDB 2.x/3.x v1-compatible endpoints). Unset: INFLUX_URL's user:password, if any. */
  INFLUX_TOKEN: z.string().min(1).optional(),
  /** InfluxDB database. */
  INFLUX_DB: z.string().regex(/^[A-Za-z0-9_]+$/).default('trellis'),
  /** The registry's PostgreSQL (`postgresql://user:password@host:5432/db`); unset: start and supervise a managed PostgreSQL under DATA_DIR/postgres. */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgresql:// URL').optional(),
  /** Simulated devices started by `npm start`. */
  FLEET_SIZE: z.coerce.number().int().min(0).max(100_000).default(20),
  /** Report interval of each simulated device, in ms. */
  FLEET_INTERVAL_MS: z.coerce.number().int().min(100).default(5000),
  /** The platform admin's bearer token (at least 32 characters); unset: nobody is admin. */
  TRELLIS_ADMIN_TOKEN: z.string().min(32, 'TRELLIS_ADMIN_TOKEN needs at least 32 characters').optional(),
  /** PEM certificate file: with TLS_KEY_FILE, the API serves HTTPS (wss at /mqtt) and MQTT over TLS listens on MQTTS_PORT. Unset: plain. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  /** PEM private key file of TLS_CERT_FILE. */
  TLS_KEY_FILE: z.string().min(1).optional(),
  /** MQTT over TLS port, used when TLS_CERT_FILE and TLS_KEY_FILE are set. */
  MQTTS_PORT: Port.default(8883),
  /** A broker running apart from the hub (mqtt:// or mqtts://): the hub then runs none and joins it with SERVICE_SECRET. Unset: the broker runs in the hub. */
  BROKER_URL: z.url().optional(),
  /** The hub's service principal at BROKER_URL. */
  SERVICE_USERNAME: z.string().regex(/^[^+#/\u0000]{1,64}$/).default('trellis-hub'),
  /** The service principal's secret (at least 32 characters), needed with BROKER_URL; also guards POST /internal/mqtt/auth. */
  SERVICE_SECRET: z.string().min(32, 'SERVICE_SECRET needs at least 32 characters').optional(),
  /** Proxies whose X-Forwarded-For is believed: `true` for any, or addresses and CIDR ranges, comma-separated. Unset: none, the socket's address counts. */
  TRUST_PROXY: z.string().min(1).optional().transform((v) => v === undefined || v === 'false' ? false : v === 'true' ? true : v.split(',').map((s) => s.trim()).filter(Boolean)),
  /** Origins a browser may call the API from, comma-separated (`https://console.example.com`). Unset: none. */
  CORS_ORIGINS: z.string().optional().transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
  /** Open HTTP connections (event streams and MQTT over WebSocket included). */
  HTTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(4096),
  LOG_LEVEL: LogLevel,
  LOG_FORMAT: LogFormat,
})
export type HubConfig = z.infer<typeof HubConfig>

export class ConfigError extends Error {}

/** Parses the environment against a schema; an empty variable counts as unset. Throws a ConfigError naming every bad variable. */
export function parseEnv<S extends z.ZodType> (schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')))
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  }
  return parsed.data
}

/** The broker alone (`npm run broker`), for a hub started with BROKER_URL. */
export const BrokerConfig = z.object({
  /** MQTT (TCP) port. */
  MQTT_PORT: Port.default(1883),
  /** Address the listener binds; 0.0.0.0 to serve other machines. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The hub's `POST /internal/mqtt/auth`, which checks device secrets against the registry. Required. */
  HUB_AUTH_URL: z.url(),
  /** The hub's service principal: the same name and secret as the hub's SERVICE_USERNAME and SERVICE_SECRET. */
  SERVICE_USERNAME: z.string().regex(/^[^+#/\u0000]{1,64}$/).default('trellis-hub'),
  /** At least 32 characters. Required. */
  SERVICE_SECRET: z.string().min(32, 'SERVICE_SECRET needs at least 32 characters'),
  /** Messages kept for the hub's session while it is away (see docs/durability.md). */
  MAX_QUEUED_FOR_SERVICE: z.coerce.number().int().min(1).default(100_000),
  LOG_LEVEL: LogLevel,
  LOG_FORMAT: LogFormat,
})
export type BrokerConfig = z.infer<typeof BrokerConfig>

export function loadBrokerConfig (env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  return parseEnv(BrokerConfig, env)
}

export function loadConfig (env: NodeJS.ProcessEnv = process.env): HubConfig {
  const config = parseEnv(HubConfig, env)
  if (Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE)) {
    throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither')
  }
  if (config.BROKER_URL && !config.SERVICE_SECRET) {
    throw new ConfigError('BROKER_URL needs SERVICE_SECRET: the hub joins the broker as its service principal')
  }
  return { ...config, DATA_DIR: path.resolve(config.DATA_DIR) }
}
