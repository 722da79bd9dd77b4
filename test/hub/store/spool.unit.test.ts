import fs from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { Spool } from '@trellis/hub'

const dirs: string[] = []
function tempDir (): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'trellis-spool-'))
  dirs.push(dir)
  return dir
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

const batch = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `temperature,device=d${from + i},maker=m,model=x value=${from + i}.0 ${1_700_000_000_000 + from + i}`)

function replayAll (spool: Spool): string[] {
  const out: string[] = []
  for (let record = spool.peek(), guard = 0; record && guard < 10_000; record = spool.peek(), guard++) {
    out.push(...record.lines)
    spool.ack(record)
  }
  return out
}

describe('the spool', () => {
  it('replays batches in the order they were appended, across segments, and is empty afterwards', () => {
    const dir = tempDir()
    const spool = Spool.open({ dir, segmentBytes: 2000, fsync: false })
    const expected: string[] = []
    for (let i = 0; i < 20; i++) {
      const lines = batch(10, i * 10)
      expect(spool.append(lines)).toBe(true)
      expected.push(...lines)
    }
    expect(spool.depth.points).toBe(200)
    expect(spool.depth.segments).toBeGreaterThan(1)
    expect(replayAll(spool)).toEqual(expected)
    expect(spool.depth).toMatchObject({ points: 0, bytes: 0 })
    expect(spool.empty).toBe(true)
    spool.close()
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).length).toBeLessThanOrEqual(1)
  })

  it('keeps appending while a replay is under way', () => {
    const spool = Spool.open({ dir: tempDir(), fsync: false })
    spool.append(batch(3, 0))
    const first = spool.peek()!
    spool.append(batch(3, 3))
    spool.ack(first)
    spool.append(batch(3, 6))
    expect(replayAll(spool)).toEqual([...batch(3, 3), ...batch(3, 6)])
    spool.close()
  })

  it('survives a restart, resuming after what was already replayed', () => {
    const dir = tempDir()
    const before = Spool.open({ dir, fsync: false })
    for (let i = 0; i < 5; i++) before.append(batch(4, i * 4))
    before.ack(before.peek()!)
    before.ack(before.peek()!)
    before.close()

    const after = Spool.open({ dir, fsync: false })
    expect(after.depth.points).toBe(12)
    expect(replayAll(after)).toEqual(batch(12, 8))
    after.close()
  })

  it('cuts off a record torn by a crash mid-append and keeps the whole ones', () => {
    const dir = tempDir()
    const spool = Spool.open({ dir, fsync: false })
    spool.append(batch(5, 0))
    spool.append(batch(5, 5))
    spool.close()
    const [segment] = fs.readdirSync(dir).filter((n) => n.endsWith('.seg'))
    const file = path.join(dir, segment)
    fs.truncateSync(file, fs.statSync(file).size - 7)

    const reopened = Spool.open({ dir, fsync: false })
    expect(reopened.depth.points).toBe(5)
    expect(replayAll(reopened)).toEqual(batch(5, 0))
    reopened.close()
  })

  it('skips a record that fails its checksum, counts it, and replays later segments', () => {
    const dir = tempDir()
    const spool = Spool.open({ dir, segmentBytes: 100, fsync: false })
    spool.append(batch(2, 0))
    spool.append(batch(2, 2))
    spool.close()
    const [first] = fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()
    const file = path.join(dir, first)
    const bytes = fs.readFileSync(file)
    bytes[20] ^= 0xff
    fs.writeFileSync(file, bytes)

    const reopened = Spool.open({ dir, fsync: false })
    const corrupt: string[] = []
    reopened.on('corrupt', (f: string) => corrupt.push(f))
    expect(replayAll(reopened)).toEqual(batch(2, 2))
    expect(reopened.corruptRecords).toBe(1)
    expect(corrupt).toEqual([file])
    expect(reopened.depth.points).toBe(0)
    reopened.close()
  })

  it('refuses appends beyond its size bound and warns as it fills', () => {
    const spool = Spool.open({ dir: tempDir(), maxBytes: 10_000, fsync: false })
    const fills: number[] = []
    spool.on('fill', (ratio: number) => fills.push(ratio))
    let accepted = 0
    for (let i = 0; i < 100; i++) if (spool.append(batch(5, i * 5))) accepted++
    expect(accepted).toBeGreaterThan(0)
    expect(accepted).toBeLessThan(100)
    expect(spool.depth.bytes).toBeLessThanOrEqual(10_000)
    expect(fills.length).toBe(4)
    expect(fills.at(-1)).toBeGreaterThanOrEqual(1)
    spool.close()
  })

  it('replays every line of every batch even when a line holds a newline, a NUL or any other byte', () => {
    // Lines are opaque to the spool: these are what an unescaping writer would have produced.
    const spool = Spool.open({ dir: tempDir(), fsync: false })
    const line = (device: string, value: string) => `firmwareVersion,device=${device},maker=m,model=x value=${value} 1700000000000`
    const batches = [
      [line('a', '1.0'), line('b', '2.0')],
      [line('c', '"1.0\nx"'), line('d', '"nul\u0000and\r\ncrlf\n\n"')],
      [line('e', '5.0')],
    ]
    for (const b of batches) expect(spool.append(b)).toBe(true)
    expect(spool.depth.points).toBe(5)
    expect(replayAll(spool)).toEqual(batches.flat())
    expect(spool.corruptRecords).toBe(0)
    spool.close()
  })

  it('drops a last record torn by a power cut (its bytes garbled, its length whole) and keeps every record before it', () => {
    const dir = tempDir()
    const spool = Spool.open({ dir, fsync: false })
    spool.append(batch(3, 0))
    spool.append(batch(3, 3))
    spool.close()
    const [segment] = fs.readdirSync(dir).filter((n) => n.endsWith('.seg'))
    const file = path.join(dir, segment)
    const bytes = fs.readFileSync(file)
    bytes[bytes.length - 3] ^= 0xff
    fs.writeFileSync(file, bytes)

    const reopened = Spool.open({ dir, fsync: false })
    expect(reopened.depth.points).toBe(3)
    expect(replayAll(reopened)).toEqual(batch(3, 0))
    expect(reopened.corruptRecords).toBe(0)
    reopened.close()
  })

  it('still replays a segment written in the older newline-joined layout', () => {
    const dir = tempDir()
    const lines = batch(3, 0)
    const payload = Buffer.from(lines.join('\n'), 'utf8')
    const header = Buffer.alloc(12)
    header.writeUInt32LE(payload.length, 0)
    header.writeUInt32LE(lines.length, 4)
    header.writeUInt32LE(crc32(payload), 8)
    fs.writeFileSync(path.join(dir, '0000000000000001.seg'), Buffer.concat([header, payload]))

    const spool = Spool.open({ dir, fsync: false })
    expect(spool.depth.points).toBe(3)
    spool.append(batch(2, 3))
    expect(replayAll(spool)).toEqual(batch(5, 0))
    spool.close()
  })
})
