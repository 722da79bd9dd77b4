import { Writable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { startInfluxd, type ManagedInfluxd } from '@trellis/hub'
import { eventually } from '../../support/wait.js'

let dir: string
let influxd: ManagedInfluxd
const logged: Array<{ msg: string, [key: string]: unknown }> = []

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'trellis-influxd-'))
  const sink = new Writable({ write (chunk, _enc, done) { logged.push(JSON.parse(chunk.toString())); done() } })
  influxd = await startInfluxd({ dataDir: dir, supervise: true, logger: pino({ level: 'info' }, sink) })
})

afterAll(async () => {
  await influxd?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const ping = async (url: string) => (await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) }).catch(() => null))?.status

describe('the managed influxd supervisor', () => {
  it('restarts influxd after it crashes, on the same port, and logs both events', async () => {
    const firstPid = influxd.pid
    const { url } = influxd
    expect(await ping(url)).toBe(204)
    influxd.kill('SIGKILL')

    await eventually(() => logged.some((l) => l.msg === 'influxd exited; restarting'), (seen) => seen, { what: 'the exit logged' })
    await influxd.ready()
    expect(influxd.pid).not.toBe(firstPid)
    expect(influxd.url).toBe(url)
    expect(await ping(url)).toBe(204)
    const exit = logged.find((l) => l.msg === 'influxd exited; restarting')!
    expect(exit).toMatchObject({ signal: 'SIGKILL', restarts: 1 })
    expect(exit.delayMs).toBeGreaterThan(0)
    expect(logged.filter((l) => l.msg === 'influxd is up')).toHaveLength(2)
  })

  it('backs off further when it crashes again soon after', async () => {
    influxd.kill('SIGKILL')
    await eventually(() => logged.filter((l) => l.msg === 'influxd exited; restarting').length, (n) => n === 2, { what: 'the second exit logged' })
    await influxd.ready()
    expect(await ping(influxd.url)).toBe(204)
    const [first, second] = logged.filter((l) => l.msg === 'influxd exited; restarting')
    // Up for less than a minute: the count goes on and the wait grows (jitter-free: 250 ms doubling).
    expect(second.restarts).toBe(2)
    expect(second.delayMs).toBe(2 * (first.delayMs as number))
  })
})
