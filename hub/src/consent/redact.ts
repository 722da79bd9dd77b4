/** What shows instead of a claimed device's payload that is not whole JSON. */
export const withheldPayload = '(withheld: the device is claimed, and its payload holds its owner\'s readings)'

const placeholder = (v: unknown): string => v === null ? '<null>' : `<${typeof v}>`

function mask (v: unknown, depth: number): unknown {
  if (depth > 64) return '<…>'
  if (Array.isArray(v)) return v.map((x) => mask(x, depth + 1))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mask(x, depth + 1)]))
  return placeholder(v)
}

/**
 * A claimed device's refused payload as its maker may see it: a JSON
 * payload keeps its shape (keys, arrays, the type of each value) so a mapping
 * can still be debugged, and loses every value, which is the owner's; any
 * other payload is withheld.
 */
export function redactPayload (payload: string): string {
  let parsed: unknown
  try {
    parsed = JSON.parse(payload)
  } catch {
    return withheldPayload
  }
  if (parsed === null || typeof parsed !== 'object') return withheldPayload
  return JSON.stringify(mask(parsed, 0))
}
