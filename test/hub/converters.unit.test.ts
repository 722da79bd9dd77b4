import { describe, expect, it } from 'vitest'
import { findConversion } from '@trellis/device-sdk'
import {
  chain, ConversionError, deviceValueOfKey, inverseScaleOffset, inverseValueMap, scaleOffset, toBoolean, toNumber, toText,
  unitFromCanonical, unitToCanonical, valueMap,
} from '../../hub/src/normalize/converters.js'

describe('the shared converters, each both ways where commands need it', () => {
  it('scale and offset', () => {
    expect(scaleOffset(0.05, -40)(1230)).toBe(21.5)
    expect(inverseScaleOffset(0.05, -40)(21.5)).toBe(1230)
    expect(scaleOffset(0.1, 0)(216)).toBe(21.6)
    expect(inverseScaleOffset(0.1, 0)(21.6)).toBe(216)
  })

  it('units, by the contract table', () => {
    const f = findConversion('°F', '°C')!
    expect(unitToCanonical(f)(70.7)).toBe(21.5)
    expect(unitFromCanonical(f)(21.5)).toBe(70.7)
    const clock = findConversion('hh:mm:ss', 's')!
    expect(unitToCanonical(clock)('01:12:30')).toBe(4350)
    expect(unitFromCanonical(clock)(4350)).toBe('01:12:30')
    expect(() => unitToCanonical(clock)('soon')).toThrow(new ConversionError('"soon" is not a duration hh:mm:ss'))
    expect(() => unitToCanonical(f)({})).toThrow('expected a number, got an object')
  })

  it('enum and boolean maps', () => {
    const door = valueMap({ OPEN: false, CLOSED: true })
    expect(door('OPEN')).toBe(false)
    expect(door('CLOSED')).toBe(true)
    expect(() => door('AJAR')).toThrow('"AJAR" is not in the map; expected one of CLOSED, OPEN')
    expect(() => door({ state: 'OPEN' })).toThrow('an object is not in the map')
    const relay = valueMap({ 1: true, 0: false })
    expect(relay(1)).toBe(true)
    expect(relay('0')).toBe(false)
    expect(inverseValueMap({ OPEN: false, CLOSED: true })(true)).toBe('CLOSED')
    expect(inverseValueMap({ 1: true, 0: false })(false)).toBe(0)
    expect(inverseValueMap({ true: 'on', false: 'off' })('on')).toBe(true)
    expect(() => inverseValueMap({ E: 'eco' })('boost')).toThrow('"boost" has no device value in the map')
  })

  it('reads a map key as the device value it stands for', () => {
    expect(deviceValueOfKey('12')).toBe(12)
    expect(deviceValueOfKey('-0.5')).toBe(-0.5)
    expect(deviceValueOfKey('false')).toBe(false)
    expect(deviceValueOfKey('ON')).toBe('ON')
    expect(deviceValueOfKey(' ')).toBe(' ')
  })

  it('numbers, booleans and text', () => {
    expect(toNumber(' 230.1 ')).toBe(230.1)
    expect(toNumber(-3)).toBe(-3)
    expect(() => toNumber('')).toThrow('expected a number, got ""')
    expect(() => toNumber(true)).toThrow('expected a number, got true')
    expect(toBoolean(false)).toBe(false)
    expect(() => toBoolean('ON')).toThrow(/map it, e\.g\./)
    expect(toText('eco')).toBe('eco')
    expect(toText(310)).toBe('310')
    expect(() => toText(null)).toThrow('expected text, got null')
  })

  it('chains converters in order', () => {
    expect(chain([toNumber, scaleOffset(0.1, 0), unitToCanonical(findConversion('d°C', '°C')!)])('2150')).toBe(21.5)
  })
})
