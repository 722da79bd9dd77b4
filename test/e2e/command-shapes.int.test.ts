import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { topics } from '@trellis/device-sdk'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

/**
 * The three command shapes makers met in the field (issue 13, "Found" 1–3),
 * each played byte for byte by a raw MQTT client standing in for the
 * firmware: it reads the command's exact bytes and answers in its own words.
 */

const env = useStack()

/** A firmware: connected as its device, subscribed to its commands, answering each with what `answer` returns (null: silence). */
async function firmware (d: { id: string, secret: string }, answer: (command: Buffer) => string | null): Promise<{ received: string[] }> {
  const client = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
  env.clients.push(client)
  const received: string[] = []
  client.on('message', (_topic, payload) => {
    received.push(payload.toString('utf8'))
    const ack = answer(payload)
    if (ack !== null) client.publish(topics.acks(d.id), ack, { qos: 1 })
  })
  await client.subscribeAsync(topics.commands(d.id), { qos: 1 })
  await client.publishAsync(topics.presence(d.id), 'online', { qos: 1, retain: true })
  await eventually(() => env.stack.hub.state.get(d.id)?.online, (online) => online === true)
  return { received }
}

/** Reports {"body":[{"k":"TMP","v":…}]}, takes {"op":"write","ref":"<id>","k":"SET","v":1400}, one message per value. */
const kvListModel = {
  name: 'kv-list-1',
  capabilities: ['temperature', 'targetTemperature', 'power'],
  mapping: {
    format: 'properties',
    properties: { list: 'body', keys: ['k'], value: 'v' },
    readings: [{ match: { k: 'TMP' }, capability: 'temperature', scale: 0.01 }],
    commands: {
      format: 'json',
      id: 'ref',
      fields: { op: 'write' },
      pairs: { key: 'k', value: 'v' },
      messages: 'each',
      set: [
        { path: 'SET', capability: 'targetTemperature', scale: 0.01 },
        { path: 'PWR', capability: 'power', map: { 1: true, 0: false } },
      ],
      ack: { status: { path: 'res', ok: ['ok'] }, error: 'why' },
    },
  },
}

describe('commands in the shape the firmware takes, apart from its telemetry', () => {
  it('sends a key/value-list device flat commands, one message per value, and answers ok only once every message is acked', async () => {
    // Reports {"body":[{"k":"TMP","v":…}]}, takes {"op":"write","ref":"<id>","k":"SET","v":1400}.
    const fleet = await seedFleet(env.api, { model: kvListModel })
    const [d] = fleet.devices
    const fw = await firmware(d, (bytes) => {
      const cmd = JSON.parse(bytes.toString('utf8')) as { ref: string, k: string, v: number }
      if (cmd.k === 'PWR' && cmd.v === 0) return JSON.stringify({ ref: cmd.ref, res: 'err', why: 'compressor protection: wait 3 min' })
      return JSON.stringify({ ref: cmd.ref, res: 'ok' })
    })

    const ok = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { targetTemperature: 14, power: true } }, fleet.ownerToken)
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ status: 'ok' })
    expect(fw.received).toEqual([
      `{"ref":"${ok.body.id}.1","op":"write","k":"SET","v":1400}`,
      `{"ref":"${ok.body.id}.2","op":"write","k":"PWR","v":1}`,
    ])

    const refused = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { targetTemperature: 5, power: false } }, fleet.ownerToken)
    expect(refused.status).toBe(200)
    expect(refused.body).toMatchObject({ status: 'error', error: 'compressor protection: wait 3 min' })
    expect(fw.received.slice(2)).toEqual([
      `{"ref":"${refused.body.id}.1","op":"write","k":"SET","v":500}`,
      `{"ref":"${refused.body.id}.2","op":"write","k":"PWR","v":0}`,
    ])
    expect(env.stack.hub.deadLetters.forModel(fleet.modelId)).toEqual([])
  })

  it('sends a device that reports text JSON commands and reads its JSON acks', async () => {
    // Reports relay=1;w=12.5, takes {"id":"<id>","relay":0}, answers {"id":"<id>","ok":true} or {"id","ok":false,"err"}.
    const fleet = await seedFleet(env.api, {
      model: {
        name: 'text-relay-1',
        capabilities: ['power', 'powerDraw'],
        mapping: {
          format: 'keyvalue',
          readings: [{ path: 'relay', capability: 'power', map: { 1: true, 0: false } }, { path: 'w', capability: 'powerDraw' }],
          commands: {
            format: 'json',
            id: 'id',
            set: [{ path: 'relay', capability: 'power', map: { 1: true, 0: false } }],
            ack: { status: { path: 'ok', ok: [true] }, error: 'err' },
          },
        },
      },
    })
    const [d] = fleet.devices
    const fw = await firmware(d, (bytes) => {
      const cmd = JSON.parse(bytes.toString('utf8')) as { id: string, relay: number }
      return JSON.stringify(cmd.relay === 1 ? { id: cmd.id, ok: false, err: 'relay welded' } : { id: cmd.id, ok: true })
    })

    const ok = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { power: false } }, fleet.ownerToken)
    expect(ok.body).toMatchObject({ status: 'ok' })
    expect(fw.received).toEqual([`{"id":"${ok.body.id}","relay":0}`])
    const refused = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { power: true } }, fleet.ownerToken)
    expect(refused.body).toMatchObject({ status: 'error', error: 'relay welded' })
    expect(fw.received[1]).toBe(`{"id":"${refused.body.id}","relay":1}`)
    expect(env.stack.hub.deadLetters.forModel(fleet.modelId)).toEqual([])
  })

  it('sends a device that takes text lines by a template, one line per value, and reads its key=value acks', async () => {
    // Reports JSON, takes "SET <key> <value> #<id>", answers "ACK=<id>,RC=0" or "ACK=<id>,RC=2,MSG=…".
    const fleet = await seedFleet(env.api, {
      model: {
        name: 'line-stat-1',
        capabilities: ['temperature', { name: 'targetTemperature', min: 5, max: 30 }, { name: 'mode', enum: ['heat', 'off'] }],
        mapping: {
          format: 'json',
          readings: [{ path: 't', capability: 'temperature' }],
          commands: {
            format: 'template',
            template: 'SET {key} {value} #{id}',
            set: [
              { path: 'SP', capability: 'targetTemperature', unit: '°F' },
              { path: 'MODE', capability: 'mode', map: { H: 'heat', O: 'off' } },
            ],
            ack: { format: 'keyvalue', keyValue: { separator: ',' }, id: 'ACK', status: { path: 'RC', ok: [0] }, error: 'MSG' },
          },
        },
      },
    })
    const [d] = fleet.devices
    const fw = await firmware(d, (bytes) => {
      const [, key, value, id] = /^SET (\w+) (\S+) #(\S+)$/.exec(bytes.toString('utf8')) ?? []
      return key === 'MODE' && value === 'O' ? `ACK=${id},RC=2,MSG=frost guard active` : `ACK=${id},RC=0`
    })

    const ok = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { targetTemperature: 20, mode: 'heat' } }, fleet.ownerToken)
    expect(ok.body).toMatchObject({ status: 'ok' })
    expect(fw.received).toEqual([`SET SP 68 #${ok.body.id}.1`, `SET MODE H #${ok.body.id}.2`])
    const refused = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { mode: 'off' } }, fleet.ownerToken)
    expect(refused.body).toMatchObject({ status: 'error', error: 'frost guard active' })
    expect(fw.received[2]).toBe(`SET MODE O #${refused.body.id}.1`)
  })

  it('refuses at submission a mapping whose two set rules write one path, naming both rules', async () => {
    // "Found" 3: power and the setpoint both written to `v`; {"set":{"power":false}} wrote "OFF" into the setpoint's field.
    const maker = await env.api.post('/v1/makers', { name: 'Overlap Inc' })
    const declared = await env.api.post('/v1/models', {
      name: 'overlap-1',
      capabilities: ['targetTemperature', 'power'],
      mapping: {
        format: 'json',
        readings: [{ path: 'v', capability: 'targetTemperature' }],
        commands: {
          id: 'ref',
          fields: { op: 'write' },
          set: [
            { path: 'v', capability: 'targetTemperature', scale: 0.01 },
            { path: 'v', capability: 'power', map: { ON: true, OFF: false } },
          ],
        },
      },
    }, maker.body.token)
    expect(declared.status).toBe(422)
    expect(declared.body.error.code).toBe('INVALID_MAPPING')
    expect(declared.body.error.message).toContain('commands.set[1].path: writes v, which commands.set[0].path writes too; give each value its own path')
  })
})

describe('a command dry-run', () => {
  it('answers the exact bytes and topic of each device message and the status each ack would give, and sends nothing', async () => {
    const fleet = await seedFleet(env.api, { model: { name: 'dry-1', capabilities: kvListModel.capabilities } })
    const [d] = fleet.devices
    const fw = await firmware(d, () => null)
    const dry = await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, {
      mapping: kvListModel.mapping,
      commands: [{ set: { targetTemperature: 14, power: true } }, { id: 'x-9', set: { power: false } }, { set: { temperature: 3 } }],
      acks: [{ ref: 'c-1.1', res: 'ok' }, '{"ref":"c-1.2","res":"err","why":"busy"}', '{"res":"ok"}', 'not json'],
    }, fleet.makerToken)
    expect(dry.status).toBe(200)
    const message = (id: string, text: string) => ({ id, topic: 'devices/{id}/commands', payload: text, base64: Buffer.from(text).toString('base64'), bytes: Buffer.byteLength(text) })
    expect(dry.body).toEqual({
      model: fleet.modelId,
      mapping: 'candidate',
      results: [],
      commands: [
        { ok: true, id: 'c-1', messages: [message('c-1.1', '{"ref":"c-1.1","op":"write","k":"SET","v":1400}'), message('c-1.2', '{"ref":"c-1.2","op":"write","k":"PWR","v":1}')] },
        { ok: true, id: 'x-9', messages: [message('x-9.1', '{"ref":"x-9.1","op":"write","k":"PWR","v":0}')] },
        { ok: false, reason: 'temperature is read-only; settable on model dry-1: targetTemperature, power' },
      ],
      acks: [
        { ok: true, id: 'c-1.1', status: 'ok' },
        { ok: true, id: 'c-1.2', status: 'error', error: 'busy' },
        { ok: false, reason: 'ack has no command id at ref' },
        { ok: false, reason: expect.stringMatching(/^ack is not JSON/) },
      ],
    })
    // Nothing sent, nothing recorded, nothing stored.
    expect((await env.api.get(`/v1/devices/${d.id}/commands`, fleet.ownerToken)).body.commands).toEqual([])
    expect((await env.api.get(`/v1/models/${fleet.modelId}`, fleet.makerToken)).body.mapping).toBeNull()
    expect(fw.received).toEqual([])
  })
})
