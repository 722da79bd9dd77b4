import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { eventually } from '../support/wait.js'
import { descendantsOf, isAlive, root } from './process-tree.js'

// The broker alone is the quickest entry point to start; every entry point logs through createLogger.
const env = { ...process.env, NODE_OPTIONS: '', HUB_AUTH_URL: 'http://127.0.0.1:9/internal/mqtt/auth', SERVICE_SECRET: 'x'.repeat(32), MQTT_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', LOG_FORMAT: '' }

/** Runs `command`, waits for `ready` in its output, sends SIGTERM and resolves with everything it wrote once all its processes are gone. */
async function runUntil (command: string, args: string[], ready: string): Promise<{ output: string, code: number | null }> {
  let tree: number[] = []
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const onData = (c: Buffer) => {
    output += c.toString()
    if (tree.length === 0 && output.includes(ready)) {
      tree = descendantsOf(child.pid!)
      child.kill('SIGTERM')
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const code = await exited
  clearTimeout(timer)
  await eventually(() => tree.filter(isAlive), (left) => left.length === 0, { what: 'no process left behind' })
  return { output, code }
}

describe('logs', () => {
  it('are JSON lines when they do not go to a terminal', async () => {
    const { output, code } = await runUntil(process.execPath, ['hub/dist/src/broker-main.js'], 'MQTT listening')
    expect(code).toBe(0)
    const lines = output.trim().split('\n')
    expect(lines.length).toBeGreaterThanOrEqual(3)
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(expect.arrayContaining(['MQTT listening', 'shutting down', 'shut down cleanly']))
  })

  it('are pretty when they go to a terminal', async () => {
    expect(existsSync('/usr/bin/script'), 'script(1) from util-linux gives the process a terminal').toBe(true)
    // script runs the broker on a pseudo-terminal and copies what it shows to our pipe.
    const { output } = await runUntil('/usr/bin/script', ['-qfec', `${process.execPath} hub/dist/src/broker-main.js`, '/dev/null'], 'MQTT listening')
    expect(output).toMatch(/INFO.*MQTT listening/)
    expect(output).not.toContain('{"level"')
  })
})
