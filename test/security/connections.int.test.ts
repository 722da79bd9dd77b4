import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fakeHubApi, type FakeHubApi } from '../support/fake-context.js'

let api: FakeHubApi
let port: number
beforeAll(async () => {
  api = await fakeHubApi({ maxConnections: 3 })
  await api.app.listen({ port: 0, host: '127.0.0.1' })
  port = (api.app.server.address() as net.AddressInfo).port
}, 60_000)
afterAll(async () => { await api?.close() })

/** A connection that sends a request and then stays open (as an event stream would), with its fate. */
async function hold (): Promise<{ socket: net.Socket, closed: Promise<void>, firstBytes: Promise<string> }> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const firstBytes = new Promise<string>((resolve) => {
    socket.once('data', (d) => resolve(d.toString('utf8')))
    socket.once('close', () => resolve(''))
  })
  socket.on('error', () => {})
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n`)
  return { socket, closed, firstBytes }
}

const within = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))])

describe('HTTP connection cap', () => {
  it('closes connections past maxConnections at once and keeps serving the ones within it', async () => {
    const held = [await hold(), await hold(), await hold()]
    for (const h of held) expect(await within(h.firstBytes, 10_000, 'answer')).toMatch(/^HTTP\/1\.1 200/)
    const over = await hold()
    await within(over.closed, 10_000, 'close of the connection over the cap')
    expect(await over.firstBytes).toBe('')
    for (const h of held) expect(h.socket.destroyed).toBe(false)
    for (const h of held) h.socket.destroy()
    await Promise.all(held.map((h) => h.closed))
  })
})
