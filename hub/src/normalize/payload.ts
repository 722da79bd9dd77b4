import type { PayloadLayout, ValueSource } from '@trellis/device-sdk'
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

/** How a rule reads its value, and how a message names where it looked. */
export function readerOf (layout: PayloadLayout, source: ValueSource): { read: Reader, label: string } {
  if (source.kind === 'match') {
    const key = layout.format === 'properties' ? matchKey(layout.keys, source.match) : JSON.stringify(source.match)
    return { read: (p) => p.items.get(key), label: key }
  }
  const path = source.path
  if (layout.format === 'keyvalue') return { read: (p) => p.pairs.get(path), label: path }
  const segments = splitPath(path)
  return { read: (p) => walk(p.doc, segments), label: path }
}

