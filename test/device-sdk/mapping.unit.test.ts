import { describe, expect, it } from 'vitest'
import { MappingError, parseMapping, resolveCapabilities, type CapabilityDeclaration } from '@trellis/device-sdk'

const caps = (decl: CapabilityDeclaration[]) => resolveCapabilities(decl)
const fridge = caps(['temperature', 'contact', 'powerDraw', { name: 'mode', enum: ['eco', 'boost'] }, 'rssi'])

function issuesOf (mapping: unknown, capabilities = fridge): string[] {
  try {
    parseMapping(mapping, capabilities)
  } catch (err) {
    expect(err).toBeInstanceOf(MappingError)
    return (err as MappingError).issues
  }
  throw new Error('the mapping was accepted')
}

describe('a mapping that is wrong says which field and what to do', () => {
  it('names an unknown unit and offers the ones that fit', () => {
    expect(issuesOf({
      format: 'json',
      readings: [{ path: 'a', capability: 'rssi' }, { path: 'b', capability: 'contact', map: { OPEN: false } }, { path: 't', capability: 'temperature', unit: 'degF' }],
    })).toEqual(['readings[2].unit: unknown unit "degF"; use one of °F, K, d°C, d°F, °C'])
  })

  it('refuses a unit of another dimension', () => {
    expect(issuesOf({ format: 'json', readings: [{ path: 'p', capability: 'powerDraw', unit: '°F' }] }))
      .toEqual(['readings[0].unit: "°F" does not convert to W (powerDraw); use one of mW, kW, W'])
  })

  it('refuses a capability the model does not have', () => {
    expect(issuesOf({ format: 'json', readings: [{ path: 'x', capability: 'co2' }] }))
      .toEqual(['readings[0].capability: the model has no capability co2; declare it in "capabilities" or drop this rule'])
  })

  it('refuses a name that is no capability at all, with zod naming the field', () => {
    const [issue] = issuesOf({ format: 'json', readings: [{ path: 'x', capability: 'temprature' }] })
    expect(issue).toMatch(/^readings\[0\]\.capability: /)
  })

  it('refuses map values that do not fit the capability', () => {
    expect(issuesOf({
      format: 'json',
      readings: [{ path: 'door', capability: 'contact', map: { OPEN: 'open' } }, { path: 'm', capability: 'mode', map: { 1: 'turbo' } }],
    })).toEqual([
      'readings[0].map.OPEN: contact is a boolean; map to true or false, not "open"',
      'readings[1].map.1: "turbo" is not one of mode\'s values eco, boost',
    ])
  })

  it('refuses units and scale on what is not a number', () => {
    expect(issuesOf({ format: 'json', readings: [{ path: 'door', capability: 'contact', unit: '%', scale: 2 }] })).toEqual([
      'readings[0].unit: contact is a boolean; it takes no unit',
      'readings[0]: contact is a boolean; scale and offset are for numbers',
    ])
  })

  it('asks for the source each format needs', () => {
    expect(issuesOf({ format: 'json', readings: [{ capability: 'rssi' }] })).toEqual(['readings[0].path: required with format "json" (e.g. "data.temp")'])
    expect(issuesOf({ format: 'properties', properties: { keys: ['siid', 'piid'] }, readings: [{ path: 'x', capability: 'rssi' }] })).toEqual([
      'readings[0].path: a "properties" mapping finds values by "match", e.g. {"siid": 2, "piid": 1}',
      'readings[0].match: required with format "properties", e.g. {"siid": 2, "piid": 1}',
    ])
    expect(issuesOf({ format: 'properties', properties: { keys: ['siid', 'piid'] }, readings: [{ match: { siid: 1 }, capability: 'rssi' }] }))
      .toEqual(['readings[0].match: must name exactly the keys piid, siid (properties.keys), got siid'])
    expect(issuesOf({ format: 'properties', readings: [{ match: { siid: 1 }, capability: 'rssi' }] })[0]).toMatch(/^properties: a "properties" mapping says how items are identified/)
  })

  it('refuses a capability mapped twice, and commands for what cannot be set', () => {
    expect(issuesOf({
      format: 'json',
      readings: [{ path: 'a', capability: 'rssi' }, { path: 'b', capability: 'rssi' }],
      commands: { id: 'id', set: [{ path: 't', capability: 'temperature' }] },
    })).toEqual([
      'readings[1].capability: rssi is already mapped by readings[0]',
      'commands.set[0].capability: temperature cannot be set, so it has no command',
    ])
  })

  it('accepts several device values for one canonical value on the way in, but not in a command', () => {
    expect(issuesOf({
      format: 'json',
      readings: [{ path: 'm', capability: 'mode', map: { E: 'eco', ECO: 'eco', B: 'boost' } }],
      commands: { id: 'id', set: [{ path: 'm', capability: 'mode', map: { E: 'eco', ECO: 'eco', B: 'boost' } }] },
    })).toEqual(['commands.set[0].map: E and ECO both mean "eco"; a command needs exactly one device value for it'])
  })

  it('reports shape errors by field: bad paths, unknown keys, a zero scale, an unknown timestamp unit', () => {
    const issues = issuesOf({
      format: 'json',
      timestamp: { path: 't', unit: 'us' },
      readings: [{ path: 'a..b', capability: 'rssi', scale: 0 }],
      colour: 'red',
    })
    expect(issues).toContain('timestamp.unit: Invalid option: expected one of "s"|"ms"|"iso"')
    expect(issues).toContain('readings[0].path: a path such as data.temp or sensors[2].value')
    expect(issues).toContain('readings[0].scale: scale 0 would lose every value')
    expect(issues.some((i) => i.startsWith('(mapping): Unrecognized key: "colour"'))).toBe(true)
  })

  it('refuses paths that would reach into a prototype', () => {
    expect(issuesOf({ format: 'json', readings: [{ path: 'a', capability: 'rssi' }], commands: { id: '__proto__.polluted', set: [{ path: 'constructor.prototype.x', capability: 'mode', map: { E: 'eco' } }] } })).toEqual([
      'commands.id: a path may not use __proto__, prototype or constructor',
      'commands.set[0].path: a path may not use __proto__, prototype or constructor',
    ])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('asks a command mapping for set rules or actions, and actions for a field that names them', () => {
    expect(issuesOf({ format: 'json', readings: [{ path: 'a', capability: 'rssi' }], commands: { id: 'id' } })).toEqual(['commands: commands needs "set" rules or "actions"'])
    expect(issuesOf({ format: 'json', readings: [{ path: 'a', capability: 'rssi' }], commands: { id: 'id', actions: { 'go!': { fields: { op: 'GO' } } } } }))
      .toEqual(['commands.actions.go!: an action name is a letter, then letters, digits, _ or -'])
    expect(issuesOf({ format: 'json', readings: [{ path: 'a', capability: 'rssi' }], commands: { id: 'id', actions: { go: { fields: {} } } } }))
      .toEqual(['commands.actions.go.fields: an action needs at least one field that names it'])
  })

  it('accepts a good mapping and fills in the defaults', () => {
    const mapping = parseMapping({
      format: 'keyvalue',
      readings: [{ path: 'W', capability: 'powerDraw' }],
      commands: { id: 'ID', set: [{ path: 'MODE', capability: 'mode', map: { E: 'eco', B: 'boost' } }] },
    }, fridge)
    expect(mapping.mapping.commands!.ack).toEqual({})
    expect(mapping.mapping.keyValue).toBeUndefined()
    expect(mapping.layout).toEqual({ format: 'keyvalue', separator: ';', assign: '=' })
    expect(mapping.commands!.ack).toEqual({ layout: { format: 'keyvalue', separator: ';', assign: '=' }, id: 'ID', status: null, error: null, state: false, report: false })
  })
})
