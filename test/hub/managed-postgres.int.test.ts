import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPostgres, startPostgres } from '@trellis/hub'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { eventually } from '../support/wait.js'

const main = fileURLToPath(new URL('../../hub/src/main.ts', import.meta.url))
let influx: TestInflux
let dir: string
const children: ChildProcess[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dir = await mkdtemp(path.join(tmpdir(), 'trellis-managed-pg-'))
  // As root, PostgreSQL runs as the postgres user, who must reach its folder.
  await chmod(dir, 0o755)
})

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await influx?.dispose()
  // The servers' watchdogs stop them once their parents are gone; wait for the folder to be free.
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Whether a process runs (a zombie left for a reaper does not). */
async function running (pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** `npm run hub` without DATABASE_URL, in a process of its own; resolves with its API URL once it is up. */
async function startHub (dataDir: string): Promise<{ child: ChildProcess, api: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, INFLUX_URL: influx.url, PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'info' }
  delete env.DATABASE_URL
  const child = spawn(process.execPath, ['--import', 'tsx', main], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  let err = ''
  child.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000) })
  const api = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the hub did not start within 45 s:\n${out}\n${err}`)), 45_000)
    child.stdout!.on('data', (c: Buffer) => {
      out = (out + c.toString()).slice(-8000)
      const line = out.split('\n').find((l) => l.includes('Trellis hub is up'))
      if (line) { clearTimeout(timer); resolve(String((JSON.parse(line) as { api: string }).api)) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the hub exited (${code}) before it was up:\n${out}\n${err}`)) })
  })
  return { child, api }
}

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

describe('the managed PostgreSQL of the default stack', () => {
  it('holds the registry under DATA_DIR, dies with a SIGKILLed hub, and serves the same accounts after a restart', async () => {
    const dataDir = path.join(dir, 'hub')
    const first = await startHub(dataDir)
    expect((await post(`${first.api}/v1/owners`, { email: 'kept@example.com', password: 'correct horse battery' })).status).toBe(201)
    const postmaster = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0])
    expect(await running(postmaster)).toBe(true)

    first.child.kill('SIGKILL')
    await eventually(() => running(postmaster), (up) => !up, { timeoutMs: 20_000, what: `PostgreSQL (pid ${postmaster}) to stop after its hub was killed` })

    const second = await startHub(dataDir)
    expect((await post(`${second.api}/v1/sessions`, { email: 'kept@example.com', password: 'correct horse battery' })).status).toBe(200)
    const exited = new Promise((resolve) => second.child.once('exit', resolve))
    second.child.kill('SIGTERM')
    await exited
    const again = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '0')).split('\n')[0])
    await eventually(() => again > 0 && running(again), (up) => !up, { timeoutMs: 20_000, what: 'PostgreSQL to stop with its hub' })
  })

  it('is restarted by its supervisor after a crash, and the registry reconnects', async () => {
    const server = await startPostgres({ dataDir: path.join(dir, 'crash'), startTimeoutMs: 30_000 })
    const db = openPostgres(server.connection)
    try {
      await db.exec('CREATE TABLE survives (n integer)')
      await db.query('INSERT INTO survives VALUES (1)')
      const before = server.pid!
      server.kill('SIGKILL')
      await eventually(() => server.pid, (pid) => pid !== before, { timeoutMs: 20_000, what: 'a new PostgreSQL process' })
      await server.ready()
      const rows = await eventually(() => db.query<{ n: number }>('SELECT n FROM survives'), (r) => r.length === 1, { timeoutMs: 20_000, what: 'the table after the restart' })
      expect(rows[0].n).toBe(1)
    } finally {
      await db.close()
      await server.stop()
    }
  })
})
