import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { eventually } from '../../support/wait.js'

// A process that starts a managed influxd, then is SIGKILLed: no exit hook runs, so only a watchdog can stop influxd.
const starter = `
import { startInfluxd } from '@trellis/hub'
const influxd = await startInfluxd({ dataDir: process.env.INFLUX_DIR })
process.stdout.write(String(influxd.pid) + '\\n')
setInterval(() => {}, 1000)
`

let dir: string
let child: ChildProcess | undefined
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

afterAll(async () => {
  child?.kill('SIGKILL')
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('the managed influxd', () => {
  it('stops when the process that started it is SIGKILLed', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-influxd-orphan-'))
    child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', starter], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, INFLUX_DIR: path.join(dir, 'influx') } })
    const pid = await new Promise<number>((resolve, reject) => {
      let out = ''
      child!.stdout!.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('\n')) resolve(Number(out.trim())) })
      child!.once('exit', (code) => reject(new Error(`the starter exited (${code}) before influxd was up`)))
    })
    expect(alive(pid)).toBe(true)
    child.kill('SIGKILL')
    await eventually(() => alive(pid), (up) => !up, { timeoutMs: 20_000, what: `influxd (pid ${pid}) to stop after its parent was killed` })
  }, 60_000)
})
