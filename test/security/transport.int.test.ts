import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { buildHub, type Hub } from '@trellis/hub'
import { freshDatabase, type TestDatabase } from '../support/postgres.js'
import { connectDevice, topics, type Device } from '@trellis/device-sdk'
import { startTestInflux, influxQuery, type TestInflux } from '../support/influx.js'
import { testLogger } from '../support/stack.js'
import { eventually } from '../support/wait.js'
import { subackCodes } from '../support/mqtt.js'

// TLS for MQTT and the API, and MQTT over WebSocket, with a self-signed certificate made at run time.
let database: TestDatabase
let influx: TestInflux
let hub: Hub
let certDir: string
let cert: Buffer
let urls: { httpUrl: string, mqttUrl: string, wsUrl: string, mqttsUrl?: string }
let fleet: { makerToken: string, ownerToken: string, devices: Array<{ id: string, secret: string }> }
const open: Array<{ close (): unknown }> = []

/** A JSON request over HTTPS that trusts only the test certificate. */
async function request (method: string, url: string, body?: unknown, token?: string): Promise<{ status: number, body: any }> {
  return await new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca: cert, headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token && { authorization: `Bearer ${token}` }) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null }))
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

beforeAll(async () => {
  certDir = await mkdtemp(path.join(tmpdir(), 'trellis-tls-'))
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')])
  cert = await readFile(path.join(certDir, 'cert.pem'))
  const key = await readFile(path.join(certDir, 'key.pem'))
  influx = await startTestInflux()
  database = await freshDatabase()
  hub = await buildHub({ influxUrl: influx.url, sql: database.open(), logger: testLogger(), tls: { cert, key }, writer: { flushIntervalMs: 20 } })
  urls = await hub.listen({ httpPort: 0, mqttPort: 0, mqttsPort: 0 })
  const maker = await request('POST', `${urls.httpUrl}/v1/makers`, { name: 'Secure Co' })
  const model = await request('POST', `${urls.httpUrl}/v1/models`, { name: 'tls-1', capabilities: ['temperature'] }, maker.body.token)
  const devices = await request('POST', `${urls.httpUrl}/v1/devices`, { model: model.body.id, count: 3 }, maker.body.token)
  const owner = await request('POST', `${urls.httpUrl}/v1/owners`, { email: 'tls@example.com', password: 'correct horse battery' })
  fleet = { makerToken: maker.body.token, ownerToken: owner.body.token, devices: devices.body.devices }
})

afterAll(async () => {
  await Promise.all(open.splice(0).map(async (c) => { try { await c.close() } catch {} }))
  await hub?.close()
  await database?.drop()
  await influx?.dispose()
  if (certDir) await rm(certDir, { recursive: true, force: true })
})

describe('transport security', () => {
  it('serves the API over HTTPS', async () => {
    expect(urls.httpUrl).toMatch(/^https:/)
    const res = await request('GET', `${urls.httpUrl}/v1/devices`, undefined, fleet.makerToken)
    expect(res.status).toBe(200)
    expect(res.body.devices).toHaveLength(3)
  })

  it('takes device telemetry over MQTT with TLS, behind the same authentication', async () => {
    const [d] = fleet.devices
    const device: Device = await connectDevice({ url: urls.mqttsUrl!, deviceId: d.id, secret: d.secret, mqtt: { ca: cert } })
    open.push(device)
    await device.report({ temperature: 18.5 })
    await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${d.id}'`), (r) => r.length === 1 && r[0].value === 18.5)
    const bad = mqtt.connect(urls.mqttsUrl!, { clientId: d.id, username: d.id, password: 'wrong', ca: cert, reconnectPeriod: 0 })
    open.push({ close: () => bad.endAsync(true) })
    const err = await new Promise<{ code?: number }>((resolve) => bad.once('error', (e) => resolve(e as { code?: number })))
    expect(err.code).toBe(4)
  })

  it('serves MQTT over WebSocket at /mqtt with the same authentication, policy and limits', async () => {
    const [, d, other] = fleet.devices
    expect(urls.wsUrl).toMatch(/^wss:\/\/.*\/mqtt$/)
    const ws = mqtt.connect(urls.wsUrl, { clientId: d.id, username: d.id, password: d.secret, ca: cert, reconnectPeriod: 0 })
    open.push({ close: () => ws.endAsync(true) })
    await new Promise<void>((resolve, reject) => { ws.once('connect', () => resolve()); ws.once('error', reject) })
    expect(await subackCodes(ws, [topics.commands(d.id), '#', topics.commands(other.id)])).toEqual([1, 128, 128])
    await ws.publishAsync(topics.telemetry(d.id), JSON.stringify({ readings: { temperature: 7 } }), { qos: 1 })
    await eventually(() => influxQuery(influx.url, `SELECT "value" FROM "temperature" WHERE "device" = '${d.id}'`), (r) => r.length === 1 && r[0].value === 7)
    const gone = new Promise<void>((resolve) => ws.once('close', () => resolve()))
    ws.publish(topics.telemetry(d.id), Buffer.alloc(256 * 1024, 0x20), { qos: 0 })
    await gone

    const bad = mqtt.connect(urls.wsUrl, { clientId: other.id, username: other.id, password: 'wrong', ca: cert, reconnectPeriod: 0 })
    open.push({ close: () => bad.endAsync(true) })
    const err = await new Promise<{ code?: number }>((resolve) => bad.once('error', (e) => resolve(e as { code?: number })))
    expect(err.code).toBe(4)
  })
})
