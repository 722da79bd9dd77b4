import { parseArgs } from 'node:util'
import path from 'node:path'
import { runService } from '@trellis/hub'
import { allSimulators } from './catalogue.js'
import { ensureDemoFleet, fleetOf } from './demo.js'
import { startFleet } from './fleet.js'

const usage = `Runs a simulated multi-brand fleet against a running Trellis hub.

  npm run simulate -- [options]

  --api URL        hub HTTP API (default http://127.0.0.1:8080)
  --mqtt URL       broker (default mqtt://127.0.0.1:1883)
  --size N         devices, spread across all kinds (default 20)
  --interval MS    report interval per device (default 5000)
  --state FILE     where makers, tokens and device secrets are kept (default .data/simulators.json)
  --kinds a,b      only these kinds (default all: ${allSimulators.map((s) => s.kind).join(', ')})
  --duration S     stop after S seconds (default: run until Ctrl-C)
`

const { values } = parseArgs({
  options: {
    api: { type: 'string', default: 'http://127.0.0.1:8080' },
    mqtt: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    size: { type: 'string', default: '20' },
    interval: { type: 'string', default: '5000' },
    state: { type: 'string', default: path.join('.data', 'simulators.json') },
    kinds: { type: 'string' },
    duration: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}

const size = Number(values.size)
if (!Number.isInteger(size) || size < 1) {
  process.stderr.write(`--size must be a whole number above 0, got ${values.size}\n`)
  process.exit(2)
}
const interval = Number(values.interval)
if (!Number.isInteger(interval) || interval < 100) {
  process.stderr.write(`--interval must be a whole number of ms of at least 100, got ${values.interval}\n`)
  process.exit(2)
}
const duration = values.duration === undefined ? null : Number(values.duration)
if (duration !== null && !(duration > 0)) {
  process.stderr.write(`--duration must be a number of seconds above 0, got ${values.duration}\n`)
  process.exit(2)
}
const wantedKinds = values.kinds?.split(',').map((k) => k.trim())
const unknown = wantedKinds?.filter((k) => !allSimulators.some((s) => s.kind === k)) ?? []
if (unknown.length > 0) {
  process.stderr.write(`unknown kinds: ${unknown.join(', ')}; known: ${allSimulators.map((s) => s.kind).join(', ')}\n`)
  process.exit(2)
}
const simulators = wantedKinds ? allSimulators.filter((s) => wantedKinds.includes(s.kind)) : allSimulators

// The same shutdown path as the hub's: SIGTERM or SIGINT stops the fleet, a second signal at once.
await runService(async () => {
  const state = await ensureDemoFleet({ apiUrl: values.api, size, simulators, file: values.state, log: (m) => process.stdout.write(`${m}\n`) })
  const fleet = await startFleet({
    url: values.mqtt,
    devices: fleetOf(state, size, simulators),
    simulators,
    intervalMs: interval,
    onProgress: (n, total) => { if (n === total || n % 100 === 0) process.stdout.write(`connected ${n}/${total}\n`) },
  })
  for (const f of fleet.failed) process.stderr.write(`device ${f.deviceId} did not start: ${f.error}\n`)
  process.stdout.write(`fleet of ${fleet.devices.length} devices running; owner token: ${state.owner.token}\n`)
  return {
    async close () {
      await fleet.stop()
      process.stdout.write(`stopped after ${fleet.published()} reports\n`)
    },
  }
})
// --duration ends the run the way a signal would.
if (duration !== null) setTimeout(() => process.kill(process.pid, 'SIGTERM'), duration * 1000)
