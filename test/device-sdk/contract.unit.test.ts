import { describe, expect, it } from 'vitest'
import {
  capabilityNames, catalogue, checkValue, CapabilityDeclarationError, parseTopic, resolveCapabilities, toEpochMs, topics,
  Telemetry, Command, Ack,
} from '@trellis/device-sdk'

describe('the capability catalogue', () => {
  it('holds every capability DESIGN.md lists, each with a kind and, for numbers, a unit and a range', () => {
    const listed = ['power', 'temperature', 'targetTemperature', 'humidity', 'powerDraw', 'energy', 'voltage', 'current', 'battery',
      'contact', 'motion', 'waterLeak', 'co2', 'pm25', 'illuminance', 'brightness', 'colorTemperature', 'mode', 'fanSpeed', 'lock',
      'cyclePhase', 'remainingTime', 'rssi', 'firmwareVersion']
    expect([...capabilityNames].sort()).toEqual([...listed].sort())
    for (const name of capabilityNames) {
      const spec = catalogue[name]
      if (spec.kind === 'number') {
        expect(spec, name).toHaveProperty('unit')
        expect(spec, name).toHaveProperty('min')
        expect(spec, name).toHaveProperty('max')
      }
    }
    const settable = capabilityNames.filter((n) => catalogue[n].settable).sort()
    expect(settable).toEqual(['brightness', 'colorTemperature', 'fanSpeed', 'lock', 'mode', 'power', 'targetTemperature'])
  })

  it('resolves a model\'s declarations, narrowing ranges and taking its own enum', () => {
    const [temp, mode, phase] = resolveCapabilities([{ name: 'targetTemperature', min: 5, max: 30 }, { name: 'mode', enum: ['eco', 'boost'] }, 'cyclePhase'])
    expect(temp).toMatchObject({ name: 'targetTemperature', kind: 'number', unit: '°C', min: 5, max: 30, settable: true })
    expect(mode).toMatchObject({ kind: 'enum', enum: ['eco', 'boost'], settable: true })
    expect(phase.enum).toContain('spin')
  })

  it.each([
    [[{ name: 'mode' }], 'capability mode needs the model\'s own "enum" values'],
    [[{ name: 'power', enum: ['a'] }], 'capability power is a boolean, it takes no enum'],
    [[{ name: 'temperature', min: -100 }], 'capability temperature min -100 is below the catalogue\'s -50'],
    [[{ name: 'humidity', min: 80, max: 20 }], 'capability humidity min 80 is above its max 20'],
    [['power', 'power'], 'capability power is declared twice'],
  ])('refuses %j with a message naming the problem', (decl, message) => {
    expect(() => resolveCapabilities(decl as never)).toThrow(CapabilityDeclarationError)
    expect(() => resolveCapabilities(decl as never)).toThrow(message)
  })

  it('checks values with messages that say what was wrong', () => {
    const [temp, power, mode, fw] = resolveCapabilities(['temperature', 'power', { name: 'mode', enum: ['eco'] }, 'firmwareVersion'])
    expect(checkValue(temp, 21.5, 'm')).toBeNull()
    expect(checkValue(temp, 412, 'frostline-f2')).toBe('temperature 412 is out of range -50..150 for model frostline-f2')
    expect(checkValue(temp, '21', 'm')).toBe('temperature must be a finite number, got "21"')
    expect(checkValue(temp, Number.NaN, 'm')).toBe('temperature must be a finite number, got number NaN')
    expect(checkValue(power, 1, 'm')).toBe('power must be true or false, got number 1')
    expect(checkValue(mode, 'turbo', 'm')).toBe('mode "turbo" is not one of eco for model m')
    expect(checkValue(fw, 'x'.repeat(300), 'm')).toBe('firmwareVersion is longer than 256 characters')
    expect(checkValue(fw, '2.1.0', 'm')).toBeNull()
  })
})

describe('topics', () => {
  it('builds and parses every channel', () => {
    expect(topics.telemetry('dev-1')).toBe('devices/dev-1/telemetry')
    expect(parseTopic('devices/dev-1/acks')).toEqual({ deviceId: 'dev-1', channel: 'acks' })
  })

  it.each(['devices/dev-1/other', 'devices/+/telemetry', 'devices/#', 'devices/dev-1/telemetry/x', '$SYS/x', 'devices//telemetry', 'devices/DEV1/telemetry'])('rejects %s', (t) => {
    expect(parseTopic(t)).toBeNull()
  })
})

describe('envelopes', () => {
  it('accepts epoch ms and ISO-8601 timestamps, and refuses implausible ones', () => {
    const now = Date.UTC(2026, 10, 23)
    expect(toEpochMs(now - 1000, now)).toBe(now - 1000)
    expect(toEpochMs('2026-11-22T10:00:00Z', now)).toBe(Date.UTC(2026, 10, 22, 10))
    expect(() => toEpochMs(1_700_000_000, now)).toThrow('before 2000')
    expect(() => toEpochMs(now + 2 * 86_400_000, now)).toThrow('more than a day in the future')
  })

  it('parses the canonical telemetry, command and ack shapes', () => {
    expect(Telemetry.safeParse({ readings: { temperature: 1 } }).success).toBe(true)
    expect(Telemetry.safeParse({ temperature: 1 }).success).toBe(false)
    expect(Command.safeParse({ id: 'c1', set: { power: true } }).success).toBe(true)
    expect(Ack.safeParse({ id: 'c1', status: 'done' }).success).toBe(false)
  })
})
