/**
 * Whether JSON text nests arrays and objects deeper than `limit`, read in one
 * pass without parsing (brackets inside strings do not count).
 */
export function jsonDepthExceeds (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) { if (++depth > limit) return true } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}
