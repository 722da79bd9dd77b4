import { execFile } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from './process-tree.js'

/** Runs the built simulator CLI; resolves with its exit code and stderr. */
function cli (...args: string[]): Promise<{ code: number, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'simulators/dist/cli.js'), ...args], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr })
    })
  })
}

describe('the simulator CLI', () => {
  it('refuses an interval or a duration that is not a positive number, saying which', async () => {
    expect(await cli('--interval', 'abc')).toEqual({ code: 2, stderr: '--interval must be a whole number of ms of at least 100, got abc\n' })
    expect(await cli('--interval', '10')).toEqual({ code: 2, stderr: '--interval must be a whole number of ms of at least 100, got 10\n' })
    expect(await cli('--duration=-5')).toEqual({ code: 2, stderr: '--duration must be a number of seconds above 0, got -5\n' })
  })
})
