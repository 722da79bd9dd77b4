import { maxPathDepth, maxPathIndex } from '@trellis/device-sdk'

/** A step along a mapping path: a key, or an array index. */
export type Segment = string | number

/** `sensors[2].value` → `['sensors', 2, 'value']`. The path was checked by the contract's MappingPath. */
export function splitPath (path: string): Segment[] {
  const out: Segment[] = []
  for (const part of path.split('.')) {
    const bracket = part.indexOf('[')
    const key = bracket === -1 ? part : part.slice(0, bracket)
    if (key) out.push(key)
    if (bracket !== -1) for (const index of part.slice(bracket).matchAll(/\[(\d+)\]/g)) out.push(Number(index[1]))
  }
  return out
}

/** The value at `segments` in a parsed payload; undefined when the payload has none there. */
export function walk (doc: unknown, segments: readonly Segment[]): unknown {
  let node = doc
  for (const s of segments) {
    if (node === null || typeof node !== 'object') return undefined
    if (typeof s === 'number') {
      if (!Array.isArray(node)) return undefined
      node = node[s]
    } else {
      if (Array.isArray(node) || !Object.hasOwn(node, s)) return undefined
      node = (node as Record<string, unknown>)[s]
    }
  }
  return node
}

/**
 * Sets `value` at `segments` in a payload being built, making the objects and
 * arrays on the way. Throws a RangeError for a path out of the contract's
 * bounds: parseMapping refuses such paths, and this holds even for a mapping
 * that reached the hub some other way (an index is an allocation).
 */
export function place (doc: Record<string, unknown>, segments: readonly Segment[], value: unknown): void {
  if (segments.length === 0 || segments.length > maxPathDepth) throw new RangeError(`a path has 1 to ${maxPathDepth} steps`)
  for (const s of segments) if (typeof s === 'number' && s > maxPathIndex) throw new RangeError(`array index ${s} is over ${maxPathIndex}`)
  let node: Record<PropertyKey, unknown> = doc
  for (let i = 0; i < segments.length - 1; i++) {
    const s = segments[i]
    // Own properties only: never descend into a prototype (parseMapping refuses such paths too).
    const next = Object.hasOwn(node, s) ? node[s] : undefined
    if (next === null || typeof next !== 'object') {
      Object.defineProperty(node, s, { value: typeof segments[i + 1] === 'number' ? [] : {}, enumerable: true, writable: true, configurable: true })
    }
    node = node[s] as Record<PropertyKey, unknown>
  }
  Object.defineProperty(node, segments[segments.length - 1], { value, enumerable: true, writable: true, configurable: true })
}
