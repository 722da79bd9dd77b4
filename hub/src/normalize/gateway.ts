import { maxGatewayEntries, type GatewayRule } from '@trellis/device-sdk'
import { splitPath, walk } from './paths.js'
import { parseJson } from './payload.js'
import { describeValue } from './converters.js'

/** One entry of a gateway's message: the child it names and the payload its own model reads, or why it cannot be read. */
export type GatewayEntry =
  | { readonly ok: true, readonly where: string, readonly child: string, readonly payload: Buffer }
  | { readonly ok: false, readonly where: string, readonly reason: string }

export type GatewayEntries = { ok: true, entries: GatewayEntry[] } | { ok: false, reason: string }

/**
 * Splits a gateway's JSON message into its children's entries. A child's
 * payload that is text (hex, base64, key/value) is passed as its bytes; a
 * JSON value is passed as JSON, for a child whose model reads JSON.
 */
export function gatewayReader (rule: GatewayRule): (payload: Buffer) => GatewayEntries {
  const list = splitPath(rule.list)
  const child = splitPath(rule.child)
  const payload = splitPath(rule.payload)
  return (raw) => {
    const parsed = parseJson(raw.toString('utf8'), 'payload')
    if (!parsed.ok) return parsed
    const items = walk(parsed.doc, list)
    if (!Array.isArray(items)) return { ok: false, reason: `gateway message has no list of entries at ${rule.list} (got ${describeValue(items)})` }
    const entries: GatewayEntry[] = []
    for (let i = 0; i < items.length; i++) {
      const where = `${rule.list}[${i}]`
      if (i >= maxGatewayEntries) {
        entries.push({ ok: false, where, reason: `${where}: a gateway message carries at most ${maxGatewayEntries} entries; the ${items.length - i} from here on were not read` })
        break
      }
      const id = walk(items[i], child)
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
        entries.push({ ok: false, where, reason: `${where}.${rule.child}: should be a device id, got ${describeValue(id)}` })
        continue
      }
      const value = walk(items[i], payload)
      if (value === undefined || value === null) {
        entries.push({ ok: false, where, reason: `${where}.${rule.payload}: entry for device ${id} has no payload` })
        continue
      }
      entries.push({ ok: true, where, child: id, payload: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8') })
    }
    return { ok: true, entries }
  }
}
