import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { apiClient } from '../support/api.js'
import { eventually } from '../support/wait.js'

const root = path.resolve(import.meta.dirname, '../..')
let dataDir: string
const children: ChildProcess[] = []

afterAll(async () => {
  // After a failed test: a SIGKILLed start would leave its influxd (its own process group) behind.
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue
    const exited = new Promise((resolve) => c.once('exit', resolve))
    c.kill('SIGINT')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))])
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  if (!dataDir) return
  const pid = Number(await readFile(path.join(dataDir, 'influxdb', 'influxd.pid'), 'utf8').catch(() => ''))
  if (pid > 1) try { process.kill(pid, 'SIGKILL') } catch {}
  await rm(dataDir, { recursive: true, force: true })
})

interface Started { child: ChildProcess, output: () => string, apiUrl: string, token: string }

/** Runs `npm start`'s script on ephemeral ports and waits for its banner. */
async function start (): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', MQTT_PORT: '0', FLEET_SIZE: '10', FLEET_INTERVAL_MS: '500', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let out = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  await eventually(() => out, (o) => o.includes('Ctrl-C stops everything') || child.exitCode !== null, { timeoutMs: 45_000, what: 'the start banner' })
  const api = /HTTP API\s+(http:\/\/\S+)/.exec(out)
  const token = /Owner token\s+(\S+)/.exec(out)
  if (!api || !token) throw new Error(`npm start did not print its URLs:\n${out}`)
  return { child, output: () => out, apiUrl: api[1], token: token[1] }
}

async function stop (s: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)))
  s.child.kill('SIGINT')
  return await exited
}

describe('npm start', () => {
  it('runs a mixed fleet whose readings reach the API within seconds, stops cleanly and reuses its data', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-start-'))
    const first = await start()
    const api = apiClient(first.apiUrl)
    const list = await eventually(() => api.get(`/v1/devices?limit=100`, first.token),
      (r) => r.status === 200 && r.body.devices.length === 10 && r.body.devices.every((d: { online: boolean, state: object }) => d.online && Object.keys(d.state).length > 0),
      { timeoutMs: 15_000, what: 'ten online devices with state' })
    const brands = new Set(list.body.devices.map((d: { modelName: string }) => d.modelName))
    expect(brands.size).toBeGreaterThanOrEqual(5)
    const thermostat = list.body.devices.find((d: { modelName: string }) => d.modelName.includes('Thermostat'))
    // State is updated at once; storage is batched, so history follows a moment later.
    const history = await eventually(() => api.get(`/v1/devices/${thermostat.id}/telemetry?capability=temperature`, first.token),
      (r) => r.status === 200 && r.body.points.length > 0, { what: 'stored thermostat temperatures' })
    expect(history.body.unit).toBe('°C')
    const influxPid = Number(await readFile(path.join(dataDir, 'influxdb', 'influxd.pid'), 'utf8'))

    expect(await stop(first)).toBe(0)
    expect(first.output()).toContain('Stopped.')
    expect(() => process.kill(influxPid, 0)).toThrow()

    const second = await start()
    expect(second.token).toBe(first.token)
    const again = await apiClient(second.apiUrl).get('/v1/devices?limit=100', second.token)
    expect(again.body.devices.map((d: { id: string }) => d.id).sort()).toEqual(list.body.devices.map((d: { id: string }) => d.id).sort())
    expect(await stop(second)).toBe(0)
  }, 120_000)
})
