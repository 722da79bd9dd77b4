import { describe, expect, it } from 'vitest'
import type { FastifyRequest } from 'fastify'
import { cookieToken, csrfTokenFor, readCookies } from '../../hub/src/api/session-cookie.js'
import { ApiError } from '../../hub/src/api/errors.js'

const request = (method: string, headers: Record<string, string>) => ({ method, headers }) as unknown as FastifyRequest

describe('the console session cookie', () => {
  it('reads cookies by name, first one wins, malformed pairs skipped', () => {
    const cookies = readCookies('a=1; trellis_session=tok; junk; trellis_session=other')
    expect(cookies.get('a')).toBe('1')
    expect(cookies.get('trellis_session')).toBe('tok')
    expect(cookies.has('junk')).toBe(false)
    expect(readCookies(undefined).size).toBe(0)
  })

  it('derives a CSRF token per session that another session cannot reuse', () => {
    expect(csrfTokenFor('a')).toBe(csrfTokenFor('a'))
    expect(csrfTokenFor('a')).not.toBe(csrfTokenFor('b'))
    expect(csrfTokenFor('a')).toMatch(/^[\w-]{43}$/)
  })

  it('lets reads through without a CSRF token and refuses changes without the matching one', () => {
    const cookie = 'trellis_session=tok'
    expect(cookieToken(request('GET', { cookie }))).toBe('tok')
    expect(cookieToken(request('POST', { cookie, 'x-csrf-token': csrfTokenFor('tok') }))).toBe('tok')
    const refusals: Array<Record<string, string>> = [{ cookie }, { cookie, 'x-csrf-token': csrfTokenFor('other') }, { cookie, 'x-csrf-token': '' }]
    for (const headers of refusals) {
      let refused: unknown = null
      try { cookieToken(request('DELETE', headers)) } catch (err) { refused = err }
      expect(refused).toBeInstanceOf(ApiError)
      expect(refused).toMatchObject({ status: 403, code: 'CSRF_TOKEN_MISMATCH' })
    }
    expect(cookieToken(request('POST', {}))).toBeNull()
  })
})
