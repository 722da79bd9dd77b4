import { describe, expect, it } from 'vitest'
import { parseMapping, resolveCapabilities, type CapabilityDeclaration, type MappingInput } from '@trellis/device-sdk'

const capabilities: CapabilityDeclaration[] = ['temperature', 'targetTemperature', 'power', 'fanSpeed', 'cyclePhase', { name: 'mode', enum: ['eco', 'boost', 'off'] }]
const resolved = resolveCapabilities(capabilities)
const readings: MappingInput['readings'] = [{ path: 't', capability: 'temperature' }]

/** The issues parseMapping gives for `commands` (none: the mapping is accepted). */
function issuesOf (commands: MappingInput['commands'], format: 'json' | 'keyvalue' = 'json'): string[] {
  try {
    parseMapping({ format, readings, commands }, resolved)
    return []
  } catch (err) {
    return (err as { issues: string[] }).issues
  }
}

describe('a command mapping is refused at submission, naming the rule', () => {
  it('when two set rules write one JSON path, or one inside the other', () => {
    expect(issuesOf({ id: 'ref', set: [{ path: 'v', capability: 'targetTemperature' }, { path: 'v', capability: 'power' }] }))
      .toEqual(['commands.set[1].path: writes v, which commands.set[0].path writes too; give each value its own path'])
    expect(issuesOf({ id: 'ref', set: [{ path: 'cmd', capability: 'targetTemperature' }, { path: 'cmd.on', capability: 'power' }] }))
      .toEqual(['commands.set[1].path: writes cmd.on, which commands.set[0].path writes too; give each value its own path'])
  })

  it('when a set rule writes the command id or a constant field', () => {
    expect(issuesOf({ id: 'ref', fields: { op: 'write' }, set: [{ path: 'op', capability: 'power' }] }))
      .toEqual(['commands.set[0].path: writes op, which commands.fields.op writes too; give each value its own path'])
    expect(issuesOf({ id: 'ID', set: [{ path: 'ID', capability: 'power' }] }, 'keyvalue'))
      .toEqual(['commands.set[0].path: writes ID, which commands.id writes too; give each value its own key'])
  })

  it('when two set rules send one key, as pairs or as text', () => {
    expect(issuesOf({ id: 'ref', pairs: { key: 'k', value: 'v' }, messages: 'each', set: [{ path: 'SET', capability: 'targetTemperature' }, { path: 'SET', capability: 'fanSpeed' }] }))
      .toEqual(['commands.set[1].path: key SET is already sent by commands.set[0]; give each value its own key'])
    expect(issuesOf({ id: 'ID', set: [{ path: 'R', capability: 'power' }, { path: 'R', capability: 'fanSpeed' }] }, 'keyvalue'))
      .toEqual(['commands.set[1].path: writes R, which commands.set[0].path writes too; give each value its own key'])
  })

  it('when flat pairs would carry two values in one message', () => {
    expect(issuesOf({ id: 'ref', pairs: { key: 'k', value: 'v' }, set: [{ path: 'SET', capability: 'targetTemperature' }, { path: 'PWR', capability: 'power' }] }))
      .toEqual(['commands.pairs: without "list", two set values in one message would both write k and v; add "messages": "each" or a "list"'])
  })

  it('when the way back cannot produce a value an owner may set', () => {
    expect(issuesOf({ id: 'ref', set: [{ path: 'm', capability: 'mode', map: { E: 'eco', B: 'boost' } }] }))
      .toEqual(['commands.set[0].map: no device value for "off"; an owner may set mode to it, so the map needs one for each'])
    expect(issuesOf({ id: 'ref', set: [{ path: 'p', capability: 'power', map: { ON: true } }] }))
      .toEqual(['commands.set[0].map: no device value for false; an owner may set power to it, so the map needs one for each'])
    expect(issuesOf({ id: 'ref', set: [{ path: 'f', capability: 'fanSpeed', map: { LO: 20, HI: 80 } }] }))
      .toEqual(['commands.set[0].map: fanSpeed takes any number in its range, but the map gives device values for only 2; drop the map or declare the capability as an enum'])
  })

  it('when a rule encodes a command the hub never sends', () => {
    expect(issuesOf({ id: 'cid', actions: { fly: { fields: { op: 'FLY' } } } }))
      .toEqual(['commands.actions.fly: the model offers no action fly, so the hub never sends it; its actions: identify, reboot, toggle, start, pause, resume, cancel'])
    expect(issuesOf({ id: 'cid', actions: { start: { fields: { op: 'START' }, params: { temperature: 'temp' } } } }))
      .toEqual(['commands.actions.start.params.temperature: action start has no param temperature; its params: programme, delaySeconds'])
    expect(issuesOf({ id: 'cid', actions: { start: { fields: { op: 'START' }, params: { programme: 'cid' } } } }))
      .toEqual(['commands.actions.start.params.programme: writes cid, which commands.id writes too; give each value its own path'])
  })

  it('when a template cannot say a value, or has no place for the ack\'s id', () => {
    expect(issuesOf({ format: 'template', template: 'POWER ON', set: [{ path: 'P', capability: 'power' }], ack: { id: 'id' } }))
      .toEqual(['commands.template: has no {value}, so a set command could not say its value'])
    expect(issuesOf({ format: 'template', template: '{value}', set: [{ path: 'P', capability: 'power' }] }))
      .toEqual(['commands.ack.id: required with a template: where the ack carries the command id back (or "report": true when the device confirms by reporting its state)'])
  })

  it('and accepts the same values each in its own place', () => {
    expect(issuesOf({ id: 'ref', fields: { op: 'write' }, pairs: { list: 'body', key: 'k', value: 'v' }, set: [{ path: 'SET', capability: 'targetTemperature' }, { path: 'PWR', capability: 'power' }] })).toEqual([])
    expect(issuesOf({ id: 'ref', set: [{ path: 'cmd.sp', capability: 'targetTemperature' }, { path: 'cmd.on', capability: 'power' }] })).toEqual([])
  })
})

describe('a topic tree is refused at submission', () => {
  const tree = (topic: string) => {
    try {
      parseMapping({ format: 'json', readings, topics: { telemetry: [{ topic }] } }, resolved)
      return []
    } catch (err) {
      return (err as { issues: string[] }).issues
    }
  }

  it('when a template lacks the device\'s own level, reaches into devices/, holds a wildcard or spells a device id', () => {
    expect(tree('tele/all/SENSOR')).toEqual(['topics.telemetry[0].topic: a topic template holds {device} once, as a whole level, e.g. "tele/{device}/SENSOR"'])
    expect(tree('tele/x{device}/SENSOR')[0]).toMatch(/^topics\.telemetry\[0\]\.topic: a topic template holds \{device\} once/)
    expect(tree('devices/{device}/x')).toEqual(['topics.telemetry[0].topic: a topic template has no + or #, does not start with $, and stays out of devices/ (the canonical tree)'])
    expect(tree('tele/{device}/#')[0]).toMatch(/no \+ or #/)
    expect(tree('dev-abcdefghijkl/{device}')).toEqual(['topics.telemetry[0].topic: a topic template\'s own levels may not start with dev- (the hub\'s device ids); use {device}'])
    expect(tree('tele/{device}/SENSOR')).toEqual([])
  })
})
