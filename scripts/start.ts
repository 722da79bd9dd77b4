import path from 'node:path'
import { ConfigError, InfluxdMissingError, PostgresMissingError, loadConfig, runHub } from '@trellis/hub'
import { allSimulators, ensureDemoFleet, fleetOf, startFleet, type Fleet } from '@trellis/simulators'

// `npm start`: the whole ecosystem on one machine — managed influxd and PostgreSQL, broker, hub and a simulated fleet.
const say = (line = '') => process.stdout.write(`${line}\n`)

let config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`)
    process.exit(2)
  }
  throw err
}

say(`Starting Trellis (data in ${config.DATA_DIR}) …`)
let running
try {
  running = await runHub(config)
} catch (err) {
  if (err instanceof InfluxdMissingError || err instanceof PostgresMissingError) {
    process.stderr.write(`${err.message}\n`)
    process.exit(2)
  }
  throw err
}

let fleet: Fleet | null = null
let demo = null
if (config.FLEET_SIZE > 0) {
  say(`Provisioning a demo fleet of ${config.FLEET_SIZE} devices across ${allSimulators.length} kinds …`)
  demo = await ensureDemoFleet({
    apiUrl: running.httpUrl,
    size: config.FLEET_SIZE,
    simulators: allSimulators,
    file: path.join(config.DATA_DIR, 'demo.json'),
    log: (m) => say(`  ${m}`),
  })
  fleet = await startFleet({
    url: running.mqttUrl,
    devices: fleetOf(demo, config.FLEET_SIZE, allSimulators),
    simulators: allSimulators,
    intervalMs: config.FLEET_INTERVAL_MS,
    onError: (id, err) => running.log.debug({ deviceId: id, err: err.message }, 'simulated device error'),
    onProgress: (n, total) => { if (n === total || n % 250 === 0) say(`  ${n}/${total} devices connected`) },
  })
  for (const f of fleet.failed) say(`  device ${f.deviceId} did not start: ${f.error}`)
}

say()
say('Trellis is running.')
say(`  Console       ${running.httpUrl}/${demo ? `   (sign in as ${demo.owner.email}, password ${demo.owner.password})` : ''}`)
say(`  HTTP API      ${running.httpUrl}   (OpenAPI document: ${running.httpUrl}/docs)`)
say(`  MQTT broker   ${running.mqttUrl}`)
say(`  InfluxDB      ${running.influxUrl}   (database ${config.INFLUX_DB}${running.influxd ? ', managed' : ''})`)
say(`  PostgreSQL    ${running.postgres ? `managed, in ${running.postgres.connection.host}` : 'DATABASE_URL'}`)
if (demo && fleet) {
  say(`  Demo fleet    ${fleet.devices.length} devices, claimed by ${demo.owner.email}`)
  say(`  Owner token   ${demo.owner.token}`)
  say()
  say('Try:')
  say(`  curl -s -H 'Authorization: Bearer ${demo.owner.token}' ${running.httpUrl}/v1/devices`)
}
say()
say('Ctrl-C stops everything and flushes pending readings.')

let stopping = false
const stop = async (signal: string) => {
  if (stopping) return
  stopping = true
  say(`\n${signal}: stopping the fleet, flushing readings, stopping influxd and PostgreSQL …`)
  await fleet?.stop()
  await running.shutdown()
  say('Stopped.')
  process.exit(0)
}
process.once('SIGINT', () => { void stop('SIGINT') })
process.once('SIGTERM', () => { void stop('SIGTERM') })
