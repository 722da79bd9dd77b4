import path from 'node:path'
import { createLogger, loadConfig, runHub, runService } from '@trellis/hub'
import { allSimulators, ensureDemoFleet, fleetOf, startFleet, type Fleet } from '@trellis/simulators'

// `npm start`: the whole ecosystem on one machine — managed influxd and PostgreSQL, broker, hub
// and a simulated fleet. What a person reads (progress, then the banner as one
// block) goes to stdout; the hub's log lines go to stderr, so `npm start > out`
// keeps the banner whole and `2>log` keeps the log apart.
const say = (line = '') => process.stdout.write(`${line}\n`)

await runService(async () => {
  const config = loadConfig()
  const log = await createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, fd: 2 })
  say(`Starting Trellis (data in ${config.DATA_DIR}) …`)
  const running = await runHub(config, log)
  let fleet: Fleet | null = null
  const close = async () => {
    say('Stopping the fleet, flushing readings, stopping influxd and PostgreSQL …')
    await fleet?.stop()
    await running.shutdown()
    say('Stopped.')
  }
  try {
    // FLEET_SIZE=0 still makes the demo owner (and its token): an empty account to start from.
    if (config.FLEET_SIZE > 0) say(`Provisioning a demo fleet of ${config.FLEET_SIZE} devices across ${allSimulators.length} kinds …`)
    const demo = await ensureDemoFleet({
      apiUrl: running.httpUrl,
      size: config.FLEET_SIZE,
      simulators: allSimulators,
      file: path.join(config.DATA_DIR, 'demo.json'),
      log: (m) => say(`  ${m}`),
    })
    if (config.FLEET_SIZE > 0) {
      fleet = await startFleet({
        url: running.mqttUrl,
        devices: fleetOf(demo, config.FLEET_SIZE, allSimulators),
        simulators: allSimulators,
        intervalMs: config.FLEET_INTERVAL_MS,
        onError: (id, err) => log.debug({ deviceId: id, err: err.message }, 'simulated device error'),
        onProgress: (n, total) => { if (n === total || n % 250 === 0) say(`  ${n}/${total} devices connected`) },
      })
      for (const f of fleet.failed) say(`  device ${f.deviceId} did not start: ${f.error}`)
    }
    const banner = [
      '',
      'Trellis is running.',
      `  Console       ${running.httpUrl}/   (sign in as ${demo.owner.email}, password ${demo.owner.password})`,
      `  HTTP API      ${running.httpUrl}   (OpenAPI document: ${running.httpUrl}/docs)`,
      `  MQTT broker   ${running.mqttUrl}`,
      `  InfluxDB      ${running.influxUrl}   (database ${config.INFLUX_DB}${running.influxd ? ', managed' : ''})`,
      `  PostgreSQL    ${running.postgres ? `managed, in ${running.postgres.connection.host}` : 'DATABASE_URL'}`,
      `  Metrics       ${running.httpUrl}/metrics`,
      fleet ? `  Demo fleet    ${fleet.devices.length} devices, claimed by ${demo.owner.email}` : `  Demo owner    ${demo.owner.email} (FLEET_SIZE=0: no simulated devices)`,
      `  Owner token   ${demo.owner.token}`,
      '',
      'Try:',
      `  curl -s -H 'Authorization: Bearer ${demo.owner.token}' ${running.httpUrl}/v1/devices`,
      '',
      'Ctrl-C stops everything and flushes pending readings (so does one SIGTERM); another, a second later, stops at once.',
    ]
    // One write: log lines on stderr cannot land inside it.
    process.stdout.write(`${banner.join('\n')}\n`)
  } catch (err) {
    await close()
    throw err
  }
  return { log, close }
})
