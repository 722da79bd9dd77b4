import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { LiveStreams } from '@trellis/hub'

/** Just enough of http.ServerResponse for a stream, with a settable backlog. */
class FakeResponse extends EventEmitter {
  status = 0
  headers: Record<string, string> = {}
  chunks: string[] = []
  writableLength = 0
  writableEnded = false
  destroyed = false
  writeHead (status: number, headers: Record<string, string>) { this.status = status; this.headers = headers; return this }
  write (chunk: string) { this.chunks.push(chunk); return true }
  end () { this.writableEnded = true; this.emit('close') }
  destroy () { this.destroyed = true; this.emit('close') }
  events () { return this.chunks.filter((c) => c.startsWith('id:')).map((c) => /event: (\w+)/.exec(c)![1]) }
}

function setup () {
  const state = new EventEmitter()
  const commands = new EventEmitter()
  const owners: Record<string, string> = { 'dev-a': 'ow-a', 'dev-b': 'ow-b' }
  const directory = {
    peek: (id: string) => owners[id] ? { id, ownerId: owners[id] } : undefined,
    get: async (id: string) => owners[id] ? { id, ownerId: owners[id] } : null,
  }
  const streams = new LiveStreams({ state: state as never, commands: commands as never, directory: directory as never, log: pino({ level: 'silent' }), commandView: (r) => r, heartbeatMs: 60_000, maxPerOwner: 2, maxBufferedBytes: 1000 })
  return { state, commands, streams }
}

describe('live streams', () => {
  it("sends each owner only its own devices' changes", () => {
    const { state, commands, streams } = setup()
    const a = new FakeResponse()
    const b = new FakeResponse()
    streams.open('ow-a', a as never)
    streams.open('ow-b', b as never)
    expect(a.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    state.emit('readings', { kind: 'state', deviceId: 'dev-b', readings: { power: { value: true, ts: 'x' } } })
    state.emit('presence', { kind: 'presence', deviceId: 'dev-a', online: false, at: 'x' })
    commands.emit('change', { id: 'cmd-1', ownerId: 'ow-b', deviceId: 'dev-b', status: 'ok' })
    expect(a.events()).toEqual(['ready', 'presence'])
    expect(b.events()).toEqual(['ready', 'state', 'command'])
    streams.close()
    // With no stream open, nobody asks the state store to render readings.
    expect(state.listenerCount('readings')).toBe(0)
  })

  it('refuses streams beyond the per-owner limit and frees a slot when one closes', () => {
    const { streams } = setup()
    const first = new FakeResponse()
    streams.open('ow-a', first as never)
    streams.open('ow-a', new FakeResponse() as never)
    expect(() => streams.open('ow-a', new FakeResponse() as never)).toThrow('at most 2 streams per owner')
    first.emit('close')
    expect(streams.size).toBe(1)
    streams.open('ow-a', new FakeResponse() as never)
    streams.close()
  })

  it('drops a client that stops reading instead of buffering without end', () => {
    const { state, streams } = setup()
    const slow = new FakeResponse()
    streams.open('ow-a', slow as never)
    slow.writableLength = 5000
    state.emit('presence', { kind: 'presence', deviceId: 'dev-a', online: true, at: 'x' })
    expect(slow.destroyed).toBe(true)
    expect(streams.size).toBe(0)
  })

  it('ends every stream with a close event on shutdown', () => {
    const { streams } = setup()
    const res = new FakeResponse()
    streams.open('ow-a', res as never)
    streams.close()
    expect(res.events()).toEqual(['ready', 'close'])
    expect(res.writableEnded).toBe(true)
    expect(streams.size).toBe(0)
  })
})
