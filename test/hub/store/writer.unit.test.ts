import http from 'node:http'
import type net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PointWriter, Spool, type Point } from '@trellis/hub'
import { eventually } from '../../support/wait.js'

/** A stand-in for InfluxDB's /write: answers with whatever `answer` says, and records what it stored. */
async function fakeInflux (answer: (body: string) => number | null) {
  const stored: string[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      const status = answer(body)
      if (status === null) return // never answers: a hung server
      if (status === 204) stored.push(...body.split('\n'))
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(status === 204 ? '' : JSON.stringify({ error: `fake ${status}` }))
    })
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  return { url, stored, close: async () => { for (const s of sockets) s.destroy(); await new Promise((r) => server.close(r)) } }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

function tempSpool (): Spool {
  const dir = mkdtempSync(path.join(tmpdir(), 'trellis-writer-'))
  const spool = Spool.open({ dir, fsync: false })
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return spool
}

const points = (n: number, from = 0): Point[] => Array.from({ length: n }, (_, i) => ({ measurement: 'temperature', device: 'dev-a', model: 'md-a', maker: 'mk-a', value: from + i, ts: 1_700_000_000_000 + from + i }))
const write = async (writer: PointWriter, p: Point[]) => await new Promise<void>((resolve, reject) => writer.write(p, (err) => err ? reject(err) : resolve()))

describe('the point writer', () => {
  it('spools batches while InfluxDB answers 5xx and replays them, oldest first, once it answers 204', async () => {
    let healthy = false
    const influx = await fakeInflux(() => healthy ? 204 : 503)
    cleanups.push(influx.close)
    const writer = new PointWriter({ url: influx.url, flushIntervalMs: 5, maxRetryDelayMs: 50, spool: tempSpool() })
    cleanups.push(() => writer.close(1000))

    await write(writer, points(3, 0))
    await write(writer, points(3, 3))
    expect(writer.degraded).toBe(true)
    expect(writer.spoolDepth.points).toBe(6)
    expect(influx.stored).toEqual([])

    healthy = true
    await eventually(() => writer.spoolDepth.points, (n) => n === 0, { what: 'the spool replayed' })
    expect(influx.stored.map((l) => Number(l.split(' ').at(-1)) - 1_700_000_000_000)).toEqual([0, 1, 2, 3, 4, 5])
    expect(writer.degraded).toBe(false)
    expect(writer.stats).toMatchObject({ spooled: 6, replayed: 6, rejected: 0 })
  })

  it('on close, spools what a hung InfluxDB has not answered by the deadline, and reports it durable', async () => {
    const influx = await fakeInflux(() => null)
    cleanups.push(influx.close)
    const spool = tempSpool()
    const writer = new PointWriter({ url: influx.url, flushIntervalMs: 5, requestTimeoutMs: 60_000, spool })
    const durable = write(writer, points(4))
    await eventually(() => writer.stats.buffered, (n) => n === 4)
    const started = Date.now()
    await writer.close(200)
    await durable
    expect(Date.now() - started).toBeLessThan(5000)
    const reopened = Spool.open({ dir: spool.dir, fsync: false })
    expect(reopened.depth.points).toBe(4)
    reopened.close()
  })

  it('refuses points it can neither hold nor spool, with an error, so they are not acknowledged', async () => {
    const influx = await fakeInflux(() => 503)
    cleanups.push(influx.close)
    const writer = new PointWriter({ url: influx.url, flushIntervalMs: 5, maxBufferedPoints: 5, maxRetryDelayMs: 50 })
    cleanups.push(() => writer.close(100))
    void write(writer, points(5)).catch(() => {})
    await expect(write(writer, points(1, 5))).rejects.toThrow(/holds 5 points, its limit/)
  })
})

describe('the point writer, values of one device', () => {
  it('writes the same lines as points would, and refuses a series past its maker\'s quota with the reason', async () => {
    const influx = await fakeInflux(() => 204)
    cleanups.push(influx.close)
    const writer = new PointWriter({ url: influx.url, flushIntervalMs: 5, cardinality: { maxDevicesPerMaker: 1 } })
    cleanups.push(() => writer.close(1000))
    const refused: Array<{ lines: string[], reason: string }> = []
    writer.on('rejected', (lines: string[], reason: string) => refused.push({ lines, reason }))
    const ts = 1_700_000_000_000
    await write(writer, [{ measurement: 'temperature', device: 'dev-a', model: 'md-a', maker: 'mk-a', value: 21, ts }])
    await new Promise<void>((resolve, reject) => writer.writeValues({ device: 'dev-a', model: 'md-a', maker: 'mk-a' },
      [{ capability: 'temperature', value: 21.5 }, { capability: 'power', value: true }], ts + 1, (err) => err ? reject(err) : resolve()))
    expect(influx.stored).toEqual([
      'temperature,device=dev-a,maker=mk-a,model=md-a value=21.0 1700000000000',
      'temperature,device=dev-a,maker=mk-a,model=md-a value=21.5 1700000000001',
      'power,device=dev-a,maker=mk-a,model=md-a value=true 1700000000001',
    ])
    await new Promise<void>((resolve, reject) => writer.writeValues({ device: 'dev-b', model: 'md-a', maker: 'mk-a' },
      [{ capability: 'temperature', value: 19 }, { capability: 'humidity', value: 40 }], ts + 2, (err) => err ? reject(err) : resolve()))
    expect(influx.stored).toHaveLength(3)
    expect(refused).toHaveLength(1)
    expect(refused[0].lines).toHaveLength(2)
    expect(refused[0].reason).toMatch(/maker mk-a already has 1 devices reporting/)
  })
})
