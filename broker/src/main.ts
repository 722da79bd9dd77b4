import { pino } from 'pino'
import { z } from 'zod'
import { createBroker } from './broker.js'
import { authenticateDevicesOverHttp } from './http-auth.js'

/** The broker alone, for a hub started with BROKER_URL: `tsx broker/src/main.ts`. */
const Config = z.object({
  /** MQTT (TCP) port. */
  MQTT_PORT: z.coerce.number().int().min(0).max(65535).default(1883),
  /** Address the listener binds; 0.0.0.0 to serve other machines. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The hub's `POST /internal/mqtt/auth`, which checks device secrets against the registry. */
  HUB_AUTH_URL: z.url(),
  /** The hub's service principal: the same name and secret as the hub's SERVICE_USERNAME and SERVICE_SECRET. */
  SERVICE_USERNAME: z.string().min(1).default('trellis-hub'),
  SERVICE_SECRET: z.string().min(32, 'SERVICE_SECRET needs at least 32 characters'),
  /** Messages kept for the hub's session while it is away (see docs/durability.md). */
  MAX_QUEUED_FOR_SERVICE: z.coerce.number().int().min(1).default(100_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

const parsed = Config.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== '')))
if (!parsed.success) {
  process.stderr.write(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`)
  process.exit(2)
}
const config = parsed.data
const logger = pino({ level: config.LOG_LEVEL })
const broker = await createBroker({
  logger,
  service: { username: config.SERVICE_USERNAME, secret: config.SERVICE_SECRET },
  authenticateDevice: authenticateDevicesOverHttp({ url: config.HUB_AUTH_URL, serviceSecret: config.SERVICE_SECRET }),
  maxQueuedForService: config.MAX_QUEUED_FOR_SERVICE,
})
await broker.listen({ port: config.MQTT_PORT, host: config.HOST })
const stop = (signal: string) => {
  logger.info({ signal }, 'shutting down')
  broker.close().then(() => process.exit(0), () => process.exit(1))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
