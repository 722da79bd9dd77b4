import { crc32 } from 'node:zlib'

/*
 * Record layout (little endian):
 *   u32 payload length | u32 flags and line count | u32 CRC-32 | payload
 * The payload is each line as u32 byte length + UTF-8 bytes, so no byte a
 * device sends can split or merge lines. The CRC covers the first eight
 * header bytes and the payload: a damaged length or count fails it too.
 * Records written before this layout have the top bit of the count clear,
 * their lines joined by \n and a CRC of the payload alone; they are still
 * read, so a spool left by an older hub replays after an upgrade.
 */
export const headerBytes = 12
const framedLines = 0x8000_0000
/** The line count in a header's second word; the top bit marks the layout. */
export const countMask = 0x7fff_ffff

/** One record of `lines` in the current layout, header included. */
export function encodeRecord (lines: readonly string[]): Buffer {
  let length = 0
  for (const line of lines) length += 4 + Buffer.byteLength(line, 'utf8')
  const record = Buffer.allocUnsafe(headerBytes + length)
  record.writeUInt32LE(length, 0)
  record.writeUInt32LE((lines.length | framedLines) >>> 0, 4)
  let at = headerBytes
  for (const line of lines) {
    const bytes = record.write(line, at + 4, 'utf8')
    record.writeUInt32LE(bytes, at)
    at += 4 + bytes
  }
  record.writeUInt32LE(crc32(record.subarray(headerBytes), crc32(record.subarray(0, 8))), 8)
  return record
}

/** The lines of a record, or null when its checksum, count or line lengths do not hold. */
export function decodeRecord (header: Buffer, payload: Buffer): string[] | null {
  const word = header.readUInt32LE(4)
  const count = word & countMask
  if (count === 0) return null
  if ((word & framedLines) === 0) {
    if (crc32(payload) !== header.readUInt32LE(8)) return null
    const lines = payload.toString('utf8').split('\n')
    return lines.length === count ? lines : null
  }
  if (crc32(payload, crc32(header.subarray(0, 8))) !== header.readUInt32LE(8)) return null
  const lines: string[] = new Array(count)
  let at = 0
  for (let i = 0; i < count; i++) {
    if (at + 4 > payload.length) return null
    const length = payload.readUInt32LE(at)
    if (at + 4 + length > payload.length) return null
    lines[i] = payload.toString('utf8', at + 4, at + 4 + length)
    at += 4 + length
  }
  return at === payload.length ? lines : null
}
