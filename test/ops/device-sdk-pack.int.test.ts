import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { eventually } from '../support/wait.js'
import { root } from './process-tree.js'

const run = promisify(execFile)
// Plain Node outside the workspace: no tsx, no development condition.
const plainEnv = { ...process.env, NODE_OPTIONS: '' }
let folder: string
let influx: TestInflux
let stack: TestStack
let api: ApiClient
let device: ChildProcess | undefined

beforeAll(async () => {
  // An empty folder outside the workspace, as a maker's project would be.
  folder = await mkdtemp(path.join(tmpdir(), 'trellis-sdk-user-'))
  const { stdout } = await run('npm', ['pack', '--workspace', 'device-sdk', '--pack-destination', folder, '--silent'], { cwd: root, env: plainEnv })
  const tarball = path.join(folder, stdout.trim().split('\n').pop()!)
  await writeFile(path.join(folder, 'package.json'), JSON.stringify({ name: 'my-device', private: true, type: 'module' }))
  const install = (mode: string) => run('npm', ['install', mode, '--no-audit', '--no-fund', tarball], { cwd: folder, env: plainEnv })
  // mqtt and zod come from the npm cache; --prefer-offline only when its metadata is not cached yet.
  await install('--offline').catch(() => install('--prefer-offline'))
  influx = await startTestInflux()
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
}, 120_000)

afterAll(async () => {
  device?.kill('SIGKILL')
  await stack?.close()
  await influx?.dispose()
  if (folder) await rm(folder, { recursive: true, force: true })
})

/** Every module a file imports, transitively, within the installed package; bare imports as names. */
async function importsOf (file: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return seen
  seen.add(file)
  const source = await readFile(file, 'utf8')
  for (const [, spec] of source.matchAll(/(?:import|export)[^'"]*from\s*['"]([^'"]+)['"]/g)) {
    if (spec.startsWith('.')) await importsOf(path.resolve(path.dirname(file), spec), seen)
    else seen.add(spec)
  }
  return seen
}

describe('@trellis/device-sdk as a maker installs it', () => {
  it('installs from its tarball with its own dependencies, JavaScript, types, README and licence', async () => {
    const installed = path.join(folder, 'node_modules', '@trellis', 'device-sdk')
    const pkg = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8'))
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['mqtt', 'zod'])
    expect(pkg.license).toBe('Apache-2.0')
    const files = await readdir(installed)
    expect(files).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'dist', 'package.json']))
    expect(await readdir(path.join(installed, 'dist'))).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'contract.js', 'contract.d.ts', 'client.js']))
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const c = await import('@trellis/device-sdk/contract'); const m = await import('@trellis/device-sdk'); console.log(c.topics.telemetry('d1'), typeof m.connectDevice)"], { cwd: folder, env: plainEnv })
    expect(stdout.trim()).toBe('devices/d1/telemetry function')
  })

  it('keeps mqtt.js out of the contract', async () => {
    const contract = await importsOf(path.join(folder, 'node_modules', '@trellis', 'device-sdk', 'dist', 'contract.js'))
    expect([...contract].filter((m) => !m.startsWith('/'))).toEqual(['zod'])
    const client = await importsOf(path.join(folder, 'node_modules', '@trellis', 'device-sdk', 'dist', 'client.js'))
    expect(client.has('mqtt')).toBe(true)
  })

  it("runs the README's device with plain Node: it reports, takes a command and acks it", async () => {
    const readme = await readFile(path.join(root, 'device-sdk', 'README.md'), 'utf8')
    const code = /```js\n([\s\S]*?)```/.exec(readme)![1]
    expect(code.split('\n').length).toBeLessThanOrEqual(25)
    await writeFile(path.join(folder, 'device.js'), code)
    const fleet = await seedFleet(api, { count: 1 })
    const { id, secret } = fleet.devices[0]
    let output = ''
    device = spawn(process.execPath, ['device.js'], { cwd: folder, env: { ...plainEnv, TRELLIS_MQTT_URL: stack.mqttUrl, DEVICE_ID: id, DEVICE_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] })
    device.stdout!.on('data', (c: Buffer) => { output += c.toString() })
    device.stderr!.on('data', (c: Buffer) => { output += c.toString() })
    const seen = await eventually(() => api.get(`/v1/devices/${id}`, fleet.ownerToken), (r) => r.body.state?.temperature !== undefined, { timeoutMs: 15_000, what: `a report from the packed SDK's device (output: ${output})` })
    expect(seen.body.state.power.value).toBe(true)
    const command = await api.post(`/v1/devices/${id}/commands?wait=10s`, { set: { power: false, targetTemperature: 18 } }, fleet.ownerToken)
    expect(command.body.status, output).toBe('ok')
    expect(command.body.state).toMatchObject({ power: false })
    const after = await eventually(() => api.get(`/v1/devices/${id}`, fleet.ownerToken), (r) => r.body.state?.power?.value === false, { what: 'the new state' })
    expect(after.body.state.targetTemperature.value).toBe(18)
    const exited = new Promise((resolve) => device!.once('exit', (code) => resolve(code)))
    device.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 60_000)

  it('passes publint', async () => {
    const { stdout } = await run(path.join(root, 'node_modules', '.bin', 'publint'), ['--strict', 'device-sdk'], { cwd: root, env: plainEnv })
    expect(stdout).toContain('All good')
  })
})
