import { createHash, timingSafeEqual } from 'node:crypto'

/** SHA-256 digest: enough for random high-entropy tokens, secrets and claim codes (not for passwords). */
export function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** SHA-256 in hex, as the registry stores digests. */
export function sha256Hex (s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

/** Constant-time equality of two digests; digests of different lengths are unequal. */
export function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Constant-time equality of two hex digests. */
export function safeEqualHex (a: string, b: string): boolean {
  return safeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'))
}

/**
 * The token of an `Authorization: Bearer <token>` header: null when there is
 * no header, '' when there is one of another form (so it can be refused as such).
 */
export function bearerToken (header: string | undefined): string | null {
  if (header === undefined) return null
  const m = /^Bearer\s+(\S+)$/i.exec(header)
  return m ? m[1] : ''
}
