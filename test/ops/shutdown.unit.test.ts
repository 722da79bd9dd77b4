import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, closeOnSignals, runService } from '@trellis/hub'

// process.emit calls the handlers as a delivered signal would, without signalling the test runner.
const signal = (s: NodeJS.Signals) => { process.emit(s, s) }
const removers: Array<() => void> = []
const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }

afterEach(() => {
  for (const remove of removers.splice(0)) remove()
  // runService keeps its handlers for the life of the process: drop the ones these tests added.
  for (const s of ['SIGTERM', 'SIGINT'] as const) {
    const keep = s === 'SIGTERM' ? before.term : before.int
    for (const l of process.listeners(s).slice(keep)) process.off(s, l)
  }
})

function exits () {
  const codes: number[] = []
  let resolve!: (code: number) => void
  const first = new Promise<number>((r) => { resolve = r })
  return { codes, first, exit: (code: number) => { codes.push(code); resolve(code) } }
}

describe('the shutdown path', () => {
  it('closes once on SIGTERM and exits 0', async () => {
    const e = exits()
    let closed = 0
    removers.push(closeOnSignals(async () => { closed++ }, { exit: e.exit }))
    signal('SIGTERM')
    expect(await e.first).toBe(0)
    expect(closed).toBe(1)
  })

  it('exits 1 at once on a second signal while the first close is still running', async () => {
    const e = exits()
    removers.push(closeOnSignals(() => new Promise<void>(() => {}), { exit: e.exit, repeatWindowMs: 0 }))
    signal('SIGINT')
    expect(e.codes).toEqual([])
    signal('SIGINT')
    expect(e.codes).toEqual([1])
  })

  it('takes a repeat of the signal within a second as the same stop (Ctrl-C reaches node directly and through npm)', async () => {
    const e = exits()
    removers.push(closeOnSignals(() => new Promise<void>(() => {}), { exit: e.exit }))
    signal('SIGINT')
    signal('SIGINT')
    expect(e.codes).toEqual([])
  })

  it('exits 1 when the close outlasts the deadline', async () => {
    const e = exits()
    removers.push(closeOnSignals(() => new Promise<void>(() => {}), { exit: e.exit, deadlineMs: 50 }))
    signal('SIGTERM')
    expect(await e.first).toBe(1)
  })

  it('a signal during start-up waits for the start, then closes what it started', async () => {
    const e = exits()
    let finishStart!: () => void
    const events: string[] = []
    const service = runService(async () => {
      await new Promise<void>((resolve) => { finishStart = resolve })
      events.push('started')
      return { close: async () => { events.push('closed') } }
    }, { exit: e.exit })
    signal('SIGTERM')
    expect(events).toEqual([])
    finishStart()
    await service
    expect(await e.first).toBe(0)
    expect(events).toEqual(['started', 'closed'])
  })

  it('a configuration error exits 2 with its message', async () => {
    const e = exits()
    const reported: string[] = []
    await expect(runService(async () => { throw new ConfigError('invalid configuration: PORT: too big') }, { exit: e.exit, report: (m) => reported.push(m) })).rejects.toThrow(ConfigError)
    expect(e.codes).toEqual([2])
    expect(reported).toEqual(['invalid configuration: PORT: too big'])
  })
})
