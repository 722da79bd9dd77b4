import { describe, expect, it } from 'vitest'
import { toLine } from '@trellis/hub'

const point = { measurement: 'temperature', device: 'dev-1', model: 'md-1', maker: 'mk-1', value: 21.5, ts: 1_700_000_000_000 }

describe('line protocol for a point', () => {
  it('writes measurement, sorted tags, a float value and a millisecond timestamp', () => {
    expect(toLine(point)).toBe('temperature,device=dev-1,maker=mk-1,model=md-1 value=21.5 1700000000000')
    expect(toLine({ ...point, value: 21 })).toBe('temperature,device=dev-1,maker=mk-1,model=md-1 value=21.0 1700000000000')
    expect(toLine({ ...point, measurement: 'power', value: true })).toBe('power,device=dev-1,maker=mk-1,model=md-1 value=true 1700000000000')
    expect(toLine({ ...point, measurement: 'firmwareVersion', value: 'v"2\\1' })).toBe('firmwareVersion,device=dev-1,maker=mk-1,model=md-1 value="v\\"2\\\\1" 1700000000000')
  })

  it('escapes commas, spaces and equals signs in tags and measurements', () => {
    expect(toLine({ ...point, device: 'dev-esc', maker: 'a b', model: 'x=y,z' })).toBe('temperature,device=dev-esc,maker=a\\ b,model=x\\=y\\,z value=21.5 1700000000000')
    expect(toLine({ ...point, measurement: 'odd name,x' })).toBe('odd\\ name\\,x,device=dev-1,maker=mk-1,model=md-1 value=21.5 1700000000000')
  })

  it('follows a device to its new model or maker', () => {
    expect(toLine({ ...point, device: 'dev-moves' })).toContain(',model=md-1 ')
    expect(toLine({ ...point, device: 'dev-moves', model: 'md-2' })).toBe('temperature,device=dev-moves,maker=mk-1,model=md-2 value=21.5 1700000000000')
    expect(toLine({ ...point, device: 'dev-moves', model: 'md-2', maker: 'mk-9' })).toContain(',maker=mk-9,model=md-2 ')
  })
})
