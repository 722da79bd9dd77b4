import { ConfigError, loadConfig } from './config.js'
import { runHub } from './server.js'
import { InfluxdMissingError } from './store/influxd.js'
import { PostgresMissingError } from './registry/postgres-server.js'

// The hub alone: influxd (managed unless INFLUX_URL), PostgreSQL (managed unless DATABASE_URL), broker and HTTP API. `npm start` adds a demo fleet.
try {
  const running = await runHub(loadConfig())
  running.log.info({ api: running.httpUrl, mqtt: running.mqttUrl, influx: running.influxUrl }, 'Trellis hub is up')
  const stop = (signal: string) => {
    running.log.info({ signal }, 'shutting down')
    running.shutdown().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (err) {
  if (err instanceof ConfigError || err instanceof InfluxdMissingError || err instanceof PostgresMissingError) {
    process.stderr.write(`${err.message}\n`)
    process.exit(2)
  }
  throw err
}
