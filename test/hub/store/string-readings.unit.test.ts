import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { checkValue, resolveCapabilities } from '@trellis/device-sdk'
import { Spool, toLine } from '@trellis/hub'
import { hostileString } from '../../support/strings.js'

const [firmware] = resolveCapabilities(['firmwareVersion'])
const dir = mkdtempSync(path.join(tmpdir(), 'trellis-strings-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The string field of a line written by `toLine`, unescaped as InfluxDB does. */
function fieldOf (line: string): string {
  const m = / value="((?:[^"\\]|\\.)*)" \d+$/.exec(line)
  if (!m) throw new Error(`no string field in ${JSON.stringify(line)}`)
  return m[1].replace(/\\([\\"])/g, '$1')
}

const control = /[\u0000-\u001f\u007f-\u009f]/
const line = (device: string, value: string | number) => toLine({ measurement: 'firmwareVersion', device, model: 'x', maker: 'm', value, ts: 1_700_000_000_000 })

describe('string readings', () => {
  it('round-trip unchanged through validation, the spool and line protocol, or are refused with a readable reason; the rest of the batch is never lost', () => {
    const spool = Spool.open({ dir, fsync: false })
    fc.assert(fc.property(hostileString, (value) => {
      const problem = checkValue(firmware, value, 'x')
      const neighbours = [line('before', 1), line('after', 2)]
      if (problem !== null) {
        // The reason reaches logs and the rejection feed: it names the field and holds no raw control character.
        expect(problem).toMatch(/^firmwareVersion /)
        expect(problem).not.toMatch(control)
        // Whatever reaches the writer anyway never breaks its line.
        expect(line('d', value)).not.toMatch(control)
        return
      }
      const batch = [neighbours[0], line('d', value), neighbours[1]]
      expect(spool.append(batch)).toBe(true)
      const record = spool.peek()!
      spool.ack(record)
      expect(record.lines).toEqual(batch)
      expect(record.lines[1]).not.toMatch(/[\n\r]/)
      expect(fieldOf(record.lines[1])).toBe(value)
    }), { numRuns: 500 })
    expect(spool.corruptRecords).toBe(0)
    expect(spool.empty).toBe(true)
    spool.close()
  }, 60_000)

  it('refuses a newline with a reason that names the character escaped', () => {
    expect(checkValue(firmware, '1.0\nx', 'x')).toBe('firmwareVersion contains a control character (U+000A) at index 3: "1.0\\u000ax"; strings may not hold C0/C1 control characters or DEL')
    expect(checkValue(firmware, 'ok\u001b[2J', 'x')).toMatch(/U\+001B/)
    expect(checkValue(firmware, 'half \ud800', 'x')).toMatch(/lone surrogate \(U\+D800\)/)
    expect(checkValue(firmware, 'v2.1 "beta" \\ é 😀', 'x')).toBeNull()
    // Any reason that quotes a device's value shows control characters escaped, not only the string capability's.
    const [mode] = resolveCapabilities([{ name: 'mode', enum: ['eco'] }])
    expect(checkValue(mode, 'eco\u001b[2J\u0000', 'x')).toBe('mode "eco\\u001b[2J\\u0000" is not one of eco for model x')
  })
})
