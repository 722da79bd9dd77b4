import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MappingError, MappingPath, maxPathDepth, maxPathIndex, parseMapping, resolveCapabilities, type ValidMapping } from '@trellis/device-sdk'
import { compileMapping, CommandEncodeError } from '../../hub/src/normalize/mapping.js'
import { splitPath } from '../../hub/src/normalize/paths.js'

// Issue #17, finding 4: `commands.id: "a[100000000]"` stalled the loop 23.7 s and took RSS to 2.5 GiB when a command was encoded.
const lamp = resolveCapabilities(['power', 'rssi'])
const withCommandId = (id: string) => ({ format: 'json', readings: [{ path: 'rssi', capability: 'rssi' }], commands: { id, set: [{ path: 'on', capability: 'power' }] } })

function issuesOf (mapping: unknown): string[] {
  try {
    parseMapping(mapping, lamp)
  } catch (err) {
    if (err instanceof MappingError) return err.issues
    throw err
  }
  return []
}

describe('mapping paths', () => {
  it('refuse a huge array index at submission, naming the rule', () => {
    expect(issuesOf(withCommandId('a[100000000]'))).toEqual([`commands.id: an array index in a path is at most ${maxPathIndex}`])
    expect(issuesOf({ format: 'json', readings: [{ path: 'sensors[99999].v', capability: 'rssi' }] })).toEqual([`readings[0].path: an array index in a path is at most ${maxPathIndex}`])
    expect(issuesOf(withCommandId(`a[${maxPathIndex}]`))).toEqual([])
  })

  it('refuse a path deeper than the bound, naming the rule', () => {
    const deep = Array.from({ length: maxPathDepth + 1 }, (_, i) => `k${i}`).join('.')
    expect(issuesOf(withCommandId(deep))).toEqual([`commands.id: a path has at most ${maxPathDepth} steps`])
    expect(issuesOf(withCommandId('[0]'.repeat(maxPathDepth + 1)))).toEqual([`commands.id: a path has at most ${maxPathDepth} steps`])
  })

  it('refuse at encode time a huge index that reached a compiled mapping unchecked, at once', () => {
    // As a mapping stored by an older hub would be, if it skipped parseMapping.
    const valid = parseMapping(withCommandId('id'), lamp)
    const tampered: ValidMapping = { ...valid, commands: { ...valid.commands!, id: 'a[2000000]' } }
    const compiled = compileMapping(tampered, 'lamp-1')
    const started = performance.now()
    expect(() => compiled.encodeCommand({ id: 'c1', set: { power: true } })).toThrow(CommandEncodeError)
    expect(performance.now() - started).toBeLessThan(100)
  })

  it('accept only paths whose steps the hub can follow within the bounds (fuzzed)', () => {
    const step = fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.nat({ max: 10 * maxPathIndex }).map((n) => `[${n}]`),
      fc.constantFrom('.', '[', ']', '[01]', '[-1]', '__proto__', '[4294967296]'),
    )
    const path = fc.oneof(fc.string({ maxLength: 300 }), fc.array(step, { maxLength: 2 * maxPathDepth }).map((steps) => steps.join('.')), fc.array(step, { maxLength: 2 * maxPathDepth }).map((steps) => steps.join('')))
    fc.assert(fc.property(path, (p) => {
      const parsed = MappingPath.safeParse(p)
      if (!parsed.success) return
      const segments = splitPath(p)
      expect(segments.length).toBeGreaterThan(0)
      expect(segments.length).toBeLessThanOrEqual(maxPathDepth)
      for (const s of segments) {
        if (typeof s === 'number') expect(s).toBeLessThanOrEqual(maxPathIndex)
        else expect(s).not.toMatch(/^(?:__proto__|prototype|constructor)$/)
      }
      // The steps say the path again: nothing was dropped or invented.
      expect(segments.map((s, i) => typeof s === 'number' ? `[${s}]` : (i ? '.' : '') + s).join('')).toBe(p.replace(/\[0*(\d+)\]/g, (_, d: string) => `[${Number(d)}]`))
    }), { numRuns: 2000 })
  })
})
