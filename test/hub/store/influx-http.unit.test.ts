import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PointWriter } from '@trellis/hub'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { authorizationOf, influxMessage, publicPath } from '../../../hub/src/store/influx-http.js'
import { redactedPaths } from '../../../hub/src/logger.js'

// A stand-in for an InfluxDB 2.x/3.x v1-compatible /write: it records what it was sent.
const seen: Array<{ url: string, authorization: string | undefined }> = []
let server: http.Server
let url: string
beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization })
    req.resume()
    req.on('end', () => { res.statusCode = 204; res.end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('InfluxDB credentials', () => {
  it('sends a token as Authorization: Token, in preference to a user and password', async () => {
    const writer = new PointWriter({ url: url.replace('//', '//u:p@'), token: 'tok-123', flushIntervalMs: 1 })
    writer.write([{ measurement: 'temperature', device: 'd', model: 'm', maker: 'k', value: 1, ts: 1 }])
    await writer.drain()
    await writer.close()
    expect(seen.at(-1)).toEqual({ url: '/write?db=trellis&precision=ms', authorization: 'Token tok-123' })
  })

  it('sends user:password from the URL as Basic, decoded', () => {
    expect(authorizationOf({ url: 'https://a%40b:p%3Ass@influx:8086' })).toBe(`Basic ${Buffer.from('a@b:p:ss').toString('base64')}`)
    expect(authorizationOf({ url: 'http://influx:8086' })).toBeNull()
  })

  it('keeps only the database of a query string in what it reports, and truncates InfluxDB\'s message', () => {
    expect(publicPath('/query?db=trellis&u=admin&p=secret&q=SELECT%201')).toBe('/query?db=trellis')
    expect(publicPath('/query?q=CREATE%20USER')).toBe('/query')
    expect(influxMessage(JSON.stringify({ error: 'x'.repeat(5000) }))!.length).toBeLessThanOrEqual(301)
  })

  it('never lets the hub\'s logger write an Authorization header, a password, a secret or a token', () => {
    const lines: string[] = []
    const log = pino({ redact: { paths: redactedPaths, censor: '[redacted]' } }, new Writable({ write (c, _e, done) { lines.push(String(c)); done() } }))
    log.error({ err: { req: { headers: { authorization: 'Basic c2VjcmV0' } } }, headers: { authorization: 'Token t1' }, password: 'p1', cfg: { secret: 's1', token: 't2' } }, 'query failed')
    expect(lines.join('')).not.toMatch(/c2VjcmV0|Token t1|p1|s1|t2/)
  })
})
