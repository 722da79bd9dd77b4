import { createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from './errors.js'

/**
 * The console's session: an API token kept in an `HttpOnly`, `SameSite=Strict`
 * cookie, so that no script in the page can read it, plus a CSRF token the
 * page sends in a header on every state-changing call. The CSRF token is an
 * HMAC of the session token: the hub keeps no state for it, a page cannot
 * forge one without the session token, and a cookie planted by another site
 * cannot be paired with a header that matches it. Bearer requests carry no
 * cookie and are unaffected.
 */
export const sessionCookieName = 'trellis_session'
export const csrfHeaderName = 'x-csrf-token'

/** How long the browser keeps the session cookie. Logging out revokes the token at once. */
const sessionMaxAgeSeconds = 30 * 24 * 3600

/** The cookies of a request by name; a malformed pair is skipped. At most 50 pairs are read. */
export function readCookies (header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>()
  if (!header) return cookies
  for (const pair of header.split(';', 50)) {
    const eq = pair.indexOf('=')
    if (eq < 0) continue
    const name = pair.slice(0, eq).trim()
    if (!cookies.has(name)) cookies.set(name, pair.slice(eq + 1).trim())
  }
  return cookies
}

/** The CSRF token that goes with a session token. */
export function csrfTokenFor (sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('trellis console csrf').digest('base64url')
}

function safeEqual (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The API token of a request's session cookie, or null when it has none.
 * A state-changing request with the cookie but without the matching CSRF
 * header is refused with 403 CSRF_TOKEN_MISMATCH.
 */
export function cookieToken (request: FastifyRequest): string | null {
  const token = readCookies(request.headers.cookie).get(sessionCookieName)
  if (!token) return null
  if (!safeMethods.has(request.method)) {
    const sent = request.headers[csrfHeaderName]
    if (typeof sent !== 'string' || !safeEqual(sent, csrfTokenFor(token))) throw errors.csrfTokenMismatch()
  }
  return token
}

/** Sets the session cookie, or clears it when `token` is null. */
export function setSessionCookie (request: FastifyRequest, reply: FastifyReply, token: string | null): void {
  const secure = request.protocol === 'https' ? '; Secure' : ''
  const value = token === null ? '; Max-Age=0' : `; Max-Age=${sessionMaxAgeSeconds}`
  reply.header('set-cookie', `${sessionCookieName}=${token ?? ''}; Path=/; HttpOnly; SameSite=Strict${value}${secure}`)
}
