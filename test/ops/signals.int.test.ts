import { afterEach, describe, expect, it } from 'vitest'
import { eventually } from '../support/wait.js'
import { commandOf, descendantsOf, isAlive, launch, type Launched } from './process-tree.js'

// The hub's own deadline is 15 s (hub/src/shutdown.ts); a clean stop of this small hub takes a few.
const stopWithinMs = 20_000
let running: Launched | undefined

afterEach(async () => {
  await running?.cleanUp()
  running = undefined
})

async function stopsEverything (r: Launched, signal: NodeJS.Signals, second?: NodeJS.Signals, group = false): Promise<void> {
  const tree = descendantsOf(r.child.pid!)
  expect(tree.map(commandOf).join('\n')).toContain('influxd')
  // To the PID the test spawned, not its group: what `kill -TERM <pid>`, systemd or Docker do;
  // or to the whole group, as Ctrl-C in a terminal does (npm and node both get it, and npm forwards its own).
  if (group) process.kill(-r.child.pid!, signal)
  else r.child.kill(signal)
  // A repeat within a second is taken as the same stop (see closeOnSignals): the forcing one comes later.
  if (second) setTimeout(() => r.child.kill(second), 1500)
  const exit = await Promise.race([r.exited, new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), stopWithinMs))])
  expect(exit, r.output()).not.toBe('late')
  const left = await eventually(() => tree.filter(isAlive), (pids) => pids.length === 0, { timeoutMs: 5_000, what: 'every child to be gone' }).catch(() => tree.filter(isAlive))
  expect(left.map(commandOf)).toEqual([])
}

describe('one signal stops the whole tree', () => {
  it('SIGTERM to `npm start` stops the hub, its fleet and influxd, leaving no orphan', async () => {
    running = await launch('npm', ['start'], /Ctrl-C stops everything/, { LOG_LEVEL: 'info', LOG_FORMAT: 'json' })
    // The hub logs to stderr: the banner on stdout holds no log line.
    expect(running.output()).toContain('"msg":"MQTT listening"')
    expect(running.stdout()).not.toContain('{"level"')
    expect(running.stdout()).toMatch(/Trellis is running\.\n(?: {2}\S.*\n)* {2}HTTP API {6}http:\/\/127\.0\.0\.1:\d+/)
    await stopsEverything(running, 'SIGTERM')
    expect((await running.exited).code).toBe(0)
  }, 120_000)

  it('`npm start` with FLEET_SIZE=0 prints an owner token, and a repeated SIGTERM still leaves no orphan', async () => {
    running = await launch('npm', ['start'], /stops everything/, { FLEET_SIZE: '0' })
    expect(running.output()).toMatch(/Owner token\s+trellis_owner_\S+/)
    expect(running.output()).not.toContain('Demo fleet')
    await stopsEverything(running, 'SIGTERM', 'SIGTERM')
  }, 120_000)

  it('Ctrl-C in a terminal (SIGINT to npm start\'s process group) stops cleanly, not as a second signal', async () => {
    running = await launch('npm', ['start'], /stops everything/, { FLEET_SIZE: '1' }, { ownGroup: true })
    await stopsEverything(running, 'SIGINT', undefined, true)
    expect(running.output()).toContain('Stopped.')
    expect((await running.exited).code).toBe(0)
  }, 120_000)

  it('SIGINT to `npm run hub` stops the hub and influxd, leaving no orphan', async () => {
    running = await launch('npm', ['run', 'hub'], /hub is up/, { LOG_LEVEL: 'info' })
    await stopsEverything(running, 'SIGINT')
  }, 120_000)
})
