import { loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { runHub } from './server.js'
import { runService } from './shutdown.js'

// The hub alone: influxd (managed unless INFLUX_URL), PostgreSQL (managed unless DATABASE_URL), broker and HTTP API, logging
// to stdout. `npm start` adds a demo fleet. SIGTERM or SIGINT stops it (runService).
await runService(async () => {
  const config = loadConfig()
  const running = await runHub(config, await createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT }))
  running.log.info({ api: running.httpUrl, mqtt: running.mqttUrl, influx: running.influxUrl }, 'Trellis hub is up')
  return running
})
