import { randomBytes, randomInt, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
export { sha256Hex, safeEqualHex } from '../crypto.js'

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, opts: { N: number, r: number, p: number, maxmem: number }) => Promise<Buffer>


const lower32 = 'abcdefghijklmnopqrstuvwxyz234567'
// Crockford's alphabet: no I, L, O or U, so a code read aloud or off a sticker survives.
const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

function randomString (alphabet: string, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)]
  return out
}

/** `prefix-` + 12 random lower-case base32 characters (60 bits). */
export function newId (prefix: 'mk' | 'md' | 'ow' | 'dev' | 'cmd' | 'sch' | 'aut' | 'tok'): string {
  return `${prefix}-${randomString(lower32, 12)}`
}

/** 256-bit bearer token; the scope is visible in the prefix so a leaked token is recognisable. */
export function newToken (scope: 'maker' | 'owner' | 'admin' | 'app'): string {
  return `trellis_${scope}_${randomBytes(32).toString('base64url')}`
}

/** 192-bit device secret. */
export function newDeviceSecret (): string {
  return randomBytes(24).toString('base64url')
}

/** A claim code as printed on the appliance: 16 Crockford base32 characters (80 bits) in groups of four. */
export function newClaimCode (): string {
  const raw = randomString(crockford, 16)
  return raw.match(/.{4}/g)!.join('-')
}

/** Case and dashes do not matter when an owner types a claim code. */
export function normalizeClaimCode (code: string): string {
  return code.toUpperCase().replace(/[^0-9A-Z]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1')
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 }

/** scrypt with a random salt, self-describing: `scrypt$N$r$p$salt$hash`. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scrypt(password.normalize('NFKC'), salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 })
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), hash.toString('base64url')].join('$')
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$')
  if (kind !== 'scrypt' || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 })
  return timingSafeEqual(actual, expected)
}
