import { describe, expect, it } from 'vitest'
import { canReceive, publishDenial, subscribeDenial, type OwnTopicsOf, type Principal } from '@trellis/broker'
import { parseMapping, resolveCapabilities, topics } from '@trellis/device-sdk'
import { compileMapping } from '../../hub/src/normalize/mapping.js'

// The tree the hub hands the broker for a Tasmota-style relay, compiled as the directory compiles it.
const relay = compileMapping(parseMapping({
  format: 'json',
  topics: { telemetry: [{ topic: 'tele/{device}/SENSOR' }, { topic: 'stat/{device}/POWER', value: { capability: 'power', map: { ON: true, OFF: false } } }], commands: 'cmnd/{device}/{key}' },
  readings: [{ path: 'ENERGY.Power', capability: 'powerDraw' }],
  commands: { format: 'template', template: '{value}', set: [{ path: 'POWER', capability: 'power', map: { ON: true, OFF: false } }], ack: { report: true } },
}, resolveCapabilities(['power', 'powerDraw'])), 'relay-1')
const own: OwnTopicsOf = (id) => id.startsWith('dev-r') ? relay.topics : null

const dev1: Principal = { kind: 'device', deviceId: 'dev-r1' }
const plain: Principal = { kind: 'device', deviceId: 'dev-p1' }
const hub: Principal = { kind: 'service', name: 'hub' }

describe('the ACL of a mapping with its own topics', () => {
  it('lets a device publish on its own telemetry topics, not another\'s, and not retained', () => {
    expect(publishDenial(dev1, 'tele/dev-r1/SENSOR', false, own)).toBeNull()
    expect(publishDenial(dev1, 'stat/dev-r1/POWER', false, own)).toBeNull()
    expect(publishDenial(dev1, 'tele/dev-r2/SENSOR', false, own)).toBe('not-own-topic')
    expect(publishDenial(dev1, 'tele/dev-r10/SENSOR', false, own)).toBe('not-own-topic')
    expect(publishDenial(dev1, 'tele/dev-r1/SENSOR/x', false, own)).toBe('not-own-topic')
    expect(publishDenial(dev1, 'cmnd/dev-r1/POWER', false, own)).toBe('not-own-topic')
    expect(publishDenial(dev1, 'stat/dev-r1/POWER', true, own)).toBe('retain-not-allowed')
    // Its canonical tree is unchanged.
    expect(publishDenial(dev1, topics.telemetry('dev-r1'), false, own)).toBeNull()
  })

  it('lets a device subscribe to its own command topics only, one by one or under its own level', () => {
    for (const filter of ['cmnd/dev-r1/POWER', 'cmnd/dev-r1/#', 'cmnd/dev-r1/+']) expect(subscribeDenial(dev1, filter, own)).toBeNull()
    for (const filter of ['cmnd/dev-r2/#', 'cmnd/+/POWER', 'cmnd/#', '#', 'cmnd/dev-r1/Dimmer', 'tele/dev-r1/SENSOR']) expect(subscribeDenial(dev1, filter, own)).not.toBeNull()
  })

  it('delivers a device its own command topics only', () => {
    expect(canReceive(dev1, 'cmnd/dev-r1/POWER', own)).toBe(true)
    expect(canReceive(dev1, 'cmnd/dev-r2/POWER', own)).toBe(false)
    expect(canReceive(dev1, 'cmnd/dev-r1/Dimmer', own)).toBe(false)
  })

  it('gives a device whose model declares no tree the canonical one only, and the service no mapped topic', () => {
    expect(publishDenial(plain, 'tele/dev-p1/SENSOR', false, own)).toBe('not-own-topic')
    expect(subscribeDenial(plain, 'cmnd/dev-p1/#', own)).toBe('wildcard')
    expect(canReceive(plain, 'cmnd/dev-p1/POWER', own)).toBe(false)
    expect(publishDenial(hub, 'cmnd/dev-r1/POWER', false, own)).toBe('wrong-direction')
  })
})
