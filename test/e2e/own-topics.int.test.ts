import { describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { subackCodes } from '../support/mqtt.js'
import { eventually, nextEvent } from '../support/wait.js'

/**
 * Firmware on its own topics (issue 13, item 2): a Tasmota-style relay that
 * reports on tele/<id>/SENSOR and stat/<id>/POWER (plain ON), takes
 * cmnd/<id>/POWER, and confirms a command only by reporting its new state.
 * A raw mqtt.js client plays it byte for byte.
 */

const env = useStack()

const relay = {
  name: 'tasmo-relay-1',
  capabilities: ['power', 'powerDraw'],
  mapping: {
    format: 'json',
    topics: {
      telemetry: [
        { topic: 'tele/{device}/SENSOR' },
        { topic: 'stat/{device}/POWER', value: { capability: 'power', map: { ON: true, OFF: false } } },
      ],
      commands: 'cmnd/{device}/{key}',
    },
    readings: [{ path: 'ENERGY.Power', capability: 'powerDraw' }],
    commands: {
      format: 'template',
      template: '{value}',
      set: [{ path: 'POWER', capability: 'power', map: { ON: true, OFF: false } }],
      ack: { report: true },
    },
  },
}

async function connect (d: { id: string, secret: string }): Promise<MqttClient> {
  const client = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 })
  env.clients.push(client)
  return client
}

describe('a Tasmota-style relay on its own topics', () => {
  it('reports on tele/ and stat/, takes cmnd/<id>/POWER, and its command is ok once it reports the new state', async () => {
    const fleet = await seedFleet(env.api, { model: relay, count: 1 })
    const [d] = fleet.devices
    const fw = await connect(d)
    const received: Array<{ topic: string, payload: string }> = []
    let obey = true
    fw.on('message', (topic, payload) => {
      received.push({ topic, payload: payload.toString('utf8') })
      // Tasmota confirms by publishing its new state; a busy relay says nothing.
      if (obey && topic === `cmnd/${d.id}/POWER`) fw.publish(`stat/${d.id}/POWER`, payload.toString('utf8'), { qos: 1 })
    })
    expect(await subackCodes(fw, [`cmnd/${d.id}/#`])).toEqual([1])
    await eventually(() => env.stack.hub.state.get(d.id)?.online, (online) => online === true)

    await fw.publishAsync(`tele/${d.id}/SENSOR`, '{"Time":"2026-11-18T08:00:00","ENERGY":{"Power":12.5}}', { qos: 1 })
    await fw.publishAsync(`stat/${d.id}/POWER`, 'ON', { qos: 1 })
    const view = await eventually(() => env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken), (r) => r.body.state?.power?.value === true && r.body.state?.powerDraw?.value === 12.5)
    expect(view.body.online).toBe(true)

    const off = await env.api.post(`/v1/devices/${d.id}/commands?wait=10s`, { set: { power: false } }, fleet.ownerToken)
    expect(off.status).toBe(200)
    expect(off.body).toMatchObject({ status: 'ok', state: { power: false } })
    expect(received).toEqual([{ topic: `cmnd/${d.id}/POWER`, payload: 'OFF' }])
    expect((await env.api.get(`/v1/devices/${d.id}`, fleet.ownerToken)).body.state.power.value).toBe(false)

    obey = false
    const ignored = await env.api.post(`/v1/devices/${d.id}/commands?wait=500ms`, { set: { power: true } }, fleet.ownerToken)
    expect(ignored.status).toBe(504)
    expect(ignored.body).toMatchObject({ status: 'timeout', error: `no ack from device ${d.id} within 500 ms` })
    expect(env.stack.hub.deadLetters.forModel(fleet.modelId)).toEqual([])
  })

  it('keeps a device to its own topics: another device\'s tree is refused, and so is a tree its model does not declare', async () => {
    const fleet = await seedFleet(env.api, { model: { ...relay, name: 'tasmo-relay-2' }, count: 2 })
    const [a, b] = fleet.devices
    const fw = await connect(a)
    expect(await subackCodes(fw, [`cmnd/${b.id}/#`, `cmnd/${b.id}/POWER`, 'cmnd/+/POWER', `cmnd/${a.id}/POWER`])).toEqual([128, 128, 128, 1])
    // Publishing on another device's telemetry topic costs the connection.
    const closed = nextEvent(fw, 'close')
    fw.publish(`tele/${b.id}/SENSOR`, '{"ENERGY":{"Power":1}}', { qos: 1 })
    await closed

    // A device whose model declares no own topics has only devices/{id}/….
    const plain = await seedFleet(env.api)
    const [p] = plain.devices
    const other = await connect(p)
    expect(await subackCodes(other, [`cmnd/${p.id}/#`])).toEqual([128])
    const dropped = nextEvent(other, 'close')
    other.publish(`tele/${p.id}/SENSOR`, '{}', { qos: 1 })
    await dropped
  })

  it('dry-runs a command to its own topic', async () => {
    const fleet = await seedFleet(env.api, { model: { ...relay, name: 'tasmo-relay-3' } })
    const dry = await env.api.post(`/v1/models/${fleet.modelId}/mapping:test`, { commands: [{ set: { power: true } }] }, fleet.makerToken)
    expect(dry.body.commands).toEqual([{ ok: true, id: 'c-1', messages: [{ id: 'c-1.1', topic: 'cmnd/{id}/POWER', payload: 'ON', base64: 'T04=', bytes: 2 }] }])
  })

  it('refuses a topic template without the device\'s identity, naming the field', async () => {
    const maker = await env.api.post('/v1/makers', { name: 'Tasmo' })
    const bad = await env.api.post('/v1/models', { ...relay, name: 'tasmo-bad', mapping: { ...relay.mapping, topics: { telemetry: [{ topic: 'tele/shared/SENSOR' }] } } }, maker.body.token)
    expect(bad.status).toBe(422)
    expect(bad.body.error.message).toContain('topics.telemetry[0].topic: a topic template holds {device} once, as a whole level, e.g. "tele/{device}/SENSOR"')
  })
})
