import type { ByteField, PayloadLayout, ValueSource } from '@trellis/device-sdk'
import { splitPath, walk } from './paths.js'

/** A device payload read once per message, in the shape its layout gives it. */
export type ParsedPayload =
  | { ok: true, doc: unknown, pairs: ReadonlyMap<string, string>, items: ReadonlyMap<string, unknown> }
  | { ok: false, reason: string }
export type Parsed = Extract<ParsedPayload, { ok: true }>

/** Reads one value out of a parsed payload. */
export type Reader = (p: Parsed) => unknown

const noPairs: ReadonlyMap<string, string> = new Map()
const noItems: ReadonlyMap<string, unknown> = new Map()

/** The key of a property-list item: `siid=2,piid=1`. */
export function matchKey (keys: readonly string[], item: Readonly<Record<string, unknown>>): string {
  // Built by hand: this runs once per item of every property-list payload.
  let key = ''
  for (let i = 0; i < keys.length; i++) key += (i ? ',' : '') + keys[i] + '=' + String(item[keys[i]])
  return key
}

function parseKeyValue (text: string, separator: string, assign: string): Parsed {
  const pairs = new Map<string, string>()
  for (const pair of text.split(separator)) {
    const at = pair.indexOf(assign)
    if (at > 0) pairs.set(pair.slice(0, at).trim(), pair.slice(at + assign.length).trim())
  }
  return { ok: true, doc: null, pairs, items: noItems }
}

export function parseJson (text: string, what: 'payload' | 'ack'): ParsedPayload {
  try {
    return { ok: true, doc: JSON.parse(text), pairs: noPairs, items: noItems }
  } catch (err) {
    return { ok: false, reason: `${what} is not JSON: ${(err as Error).message}` }
  }
}

/** The parser of a layout: text split into pairs, JSON, or JSON with its property list indexed by item key. */
export function payloadParser (layout: PayloadLayout): (payload: Buffer) => ParsedPayload {
  switch (layout.format) {
    case 'binary': return binaryParser(layout.encoding)
    case 'keyvalue': return (payload) => parseKeyValue(payload.toString('utf8'), layout.separator, layout.assign)
    case 'json': return (payload) => parseJson(payload.toString('utf8'), 'payload')
    case 'properties': {
      const listPath = layout.list ? splitPath(layout.list) : []
      return (payload) => {
        const parsed = parseJson(payload.toString('utf8'), 'payload')
        if (!parsed.ok) return parsed
        const list = walk(parsed.doc, listPath)
        if (!Array.isArray(list)) return { ok: false, reason: `payload has no property list at ${layout.list ?? '(root)'}` }
        const items = new Map<string, unknown>()
        for (const item of list) {
          if (item !== null && typeof item === 'object' && !Array.isArray(item)) items.set(matchKey(layout.keys, item as Record<string, unknown>), (item as Record<string, unknown>)[layout.value])
        }
        return { ok: true, doc: parsed.doc, pairs: noPairs, items }
      }
    }
  }
}

/** A payload that is one value as text (`ON`): the trimmed text sits in `doc`. */
export function textParser (payload: Buffer): ParsedPayload {
  return { ok: true, doc: payload.toString('utf8').trim(), pairs: noPairs, items: noItems }
}

/** Bytes as sent, or spelled as hex or base64 text; the bytes sit in `doc`. */
function binaryParser (encoding: 'raw' | 'hex' | 'base64'): (payload: Buffer) => ParsedPayload {
  if (encoding === 'raw') return (payload) => ({ ok: true, doc: payload, pairs: noPairs, items: noItems })
  const spelling = encoding === 'hex' ? /^(?:[0-9a-fA-F]{2})*$/ : /^[A-Za-z0-9+/]*={0,2}$/
  return (payload) => {
    const text = payload.toString('latin1').trim()
    // Buffer.from skips what it cannot read: a typo would shift every field after it.
    if (!spelling.test(text) || (encoding === 'base64' && text.length % 4 !== 0)) return { ok: false, reason: `payload is not ${encoding} text` }
    return { ok: true, doc: Buffer.from(text, encoding), pairs: noPairs, items: noItems }
  }
}

const byteWidth: Record<ByteField['type'], number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4 }

/** Reads a number at a byte offset; undefined when the payload is too short for it. */
function byteReader (field: ByteField): Reader {
  const { offset, type } = field
  const little = field.endian === 'little'
  const end = offset + byteWidth[type]
  const read = (b: Buffer): number => {
    switch (type) {
      case 'u8': return b.readUInt8(offset)
      case 'i8': return b.readInt8(offset)
      case 'u16': return little ? b.readUInt16LE(offset) : b.readUInt16BE(offset)
      case 'i16': return little ? b.readInt16LE(offset) : b.readInt16BE(offset)
      case 'u32': return little ? b.readUInt32LE(offset) : b.readUInt32BE(offset)
      case 'i32': return little ? b.readInt32LE(offset) : b.readInt32BE(offset)
      case 'f32': return little ? b.readFloatLE(offset) : b.readFloatBE(offset)
    }
  }
  return (p) => {
    const b = p.doc
    return Buffer.isBuffer(b) && b.length >= end ? read(b) : undefined
  }
}

/** `bytes 2..3 (i16 little)` */
function byteLabel (field: ByteField): string {
  const width = byteWidth[field.type]
  return `bytes ${field.offset}${width > 1 ? `..${field.offset + width - 1}` : ''} (${field.type}${width > 1 ? ` ${field.endian ?? 'big'}` : ''})`
}

/** How a rule reads its value, and how a message names where it looked. */
export function readerOf (layout: PayloadLayout, source: ValueSource): { read: Reader, label: string } {
  if (source.kind === 'bytes') return { read: byteReader(source.field), label: byteLabel(source.field) }
  if (source.kind === 'text') return { read: (p) => p.doc, label: 'the payload' }
  if (source.kind === 'match') {
    const key = layout.format === 'properties' ? matchKey(layout.keys, source.match) : JSON.stringify(source.match)
    return { read: (p) => p.items.get(key), label: key }
  }
  const path = source.path
  if (layout.format === 'keyvalue') return { read: (p) => p.pairs.get(path), label: path }
  const segments = splitPath(path)
  return { read: (p) => walk(p.doc, segments), label: path }
}

