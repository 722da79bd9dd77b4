import { authenticateDevicesOverHttp, createBroker } from '@trellis/broker'
import { loadBrokerConfig } from './config.js'
import { createLogger } from './logger.js'
import { runService } from './shutdown.js'

// The broker alone, for a hub started with BROKER_URL: `npm run broker`. It lives
// here, beside the hub's entry point, to share its configuration parser and its
// shutdown path (the broker package does not depend on the hub).
await runService(async () => {
  const config = loadBrokerConfig()
  const log = await createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT })
  const broker = await createBroker({
    logger: log,
    service: { username: config.SERVICE_USERNAME, secret: config.SERVICE_SECRET },
    authenticateDevice: authenticateDevicesOverHttp({ url: config.HUB_AUTH_URL, serviceSecret: config.SERVICE_SECRET }),
    maxQueuedForService: config.MAX_QUEUED_FOR_SERVICE,
  })
  await broker.listen({ port: config.MQTT_PORT, host: config.HOST })
  return { log, close: () => broker.close() }
})
