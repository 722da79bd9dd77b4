import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient, seedFleet, type ApiClient } from '../support/api.js'
import { desktop, screenshotDir, startBrowser, type TestBrowser } from './browser.js'

let influx: TestInflux
let stack: TestStack
let browser: TestBrowser
let api: ApiClient
let fleet: Awaited<ReturnType<typeof seedFleet>>
let page: Page
let context: BrowserContext

beforeAll(async () => {
  ;[influx, browser] = await Promise.all([startTestInflux(), startBrowser()])
  stack = await startStack({ influxUrl: influx.url })
  api = apiClient(stack.httpUrl)
  // The first owner, with a device.
  fleet = await seedFleet(api, { email: 'first@example.com' })
  // The second owner, who has none.
  await api.post('/v1/owners', { email: 'second@example.com', password: 'correct horse battery' })
})

afterAll(async () => {
  await browser?.close()
  await stack?.close()
  await influx?.dispose()
})

/** A call from inside the page, with its cookies, and with the headers given. */
async function pageFetch (method: string, url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, code: string | null }> {
  return await page.evaluate(async ([m, u, b, h]) => {
    const json: Record<string, string> = b === undefined ? {} : { 'content-type': 'application/json' }
    const res = await fetch(u as string, { method: m as string, headers: { ...json, ...(h as Record<string, string>) }, body: b === undefined ? undefined : JSON.stringify(b) })
    const answer = await res.json().catch(() => null) as { error?: { code: string } } | null
    return { status: res.status, code: answer?.error?.code ?? null }
  }, [method, url, body, headers] as const)
}

describe('console sessions', () => {
  it('keep the session in an HttpOnly, SameSite=Strict cookie that scripts cannot read', async () => {
    const res = await fetch(`${stack.httpUrl}/v1/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'second@example.com', password: 'correct horse battery' }) })
    expect(res.status).toBe(201)
    const cookie = res.headers.get('set-cookie')!
    expect(cookie).toMatch(/^trellis_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/)
    expect((await res.json() as { csrf: string }).csrf).toMatch(/^[\w-]{43}$/)

    ;({ page, context } = await browser.open(stack.httpUrl, desktop))
    await page.getByLabel('Email').fill('second@example.com')
    await page.getByLabel('Password').fill('wrong password!')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor()
    await page.screenshot({ path: path.join(screenshotDir, 'sign-in.png') })
    await page.getByLabel('Password').fill('correct horse battery')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('You have no devices yet').waitFor()
    expect(await page.evaluate(() => (globalThis as any).document.cookie)).toBe('')
    const cookies = await context.cookies()
    expect(cookies.find((c) => c.name === 'trellis_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' })
  })

  it('do not show a second owner the first owner\'s device, in the list or by editing the URL', async () => {
    const theirs = fleet.devices[0].id
    expect(await page.content()).not.toContain(theirs)
    await page.goto(`${stack.httpUrl}/#/devices/${theirs}`)
    await page.getByRole('alert').filter({ hasText: `No device ${theirs} that you can see.` }).waitFor()
    expect(await page.locator('table').count()).toBe(0)
    const history = await page.evaluate(async (id) => (await fetch(`/v1/devices/${id}/telemetry?capability=temperature`)).status, theirs)
    expect(history).toBe(404)
  })

  it('refuse a state-changing request with the cookie but without the CSRF token', async () => {
    const claim = { claimCode: fleet.devices[0].claimCode }
    expect(await pageFetch('POST', '/v1/devices/claim', claim)).toEqual({ status: 403, code: 'CSRF_TOKEN_MISMATCH' })
    expect(await pageFetch('POST', '/v1/devices/claim', claim, { 'x-csrf-token': 'A'.repeat(43) })).toEqual({ status: 403, code: 'CSRF_TOKEN_MISMATCH' })
    expect(await pageFetch('DELETE', '/v1/console/session', undefined)).toEqual({ status: 403, code: 'CSRF_TOKEN_MISMATCH' })
    // With the session's own token the request goes through (and the code, already claimed, is refused for what it is).
    const csrf = await page.evaluate(async () => ((await (await fetch('/v1/console/session')).json()) as { csrf: string }).csrf)
    expect(await pageFetch('POST', '/v1/devices/claim', claim, { 'x-csrf-token': csrf })).toEqual({ status: 404, code: 'INVALID_CLAIM_CODE' })
    // Bearer requests carry no cookie and need no CSRF token.
    const bearer = await api.post('/v1/devices/claim', claim, fleet.ownerToken)
    expect(bearer.body.error.code).toBe('INVALID_CLAIM_CODE')
  })

  it('end with sign-out, which revokes the token at once', async () => {
    const token = (await context.cookies()).find((c) => c.name === 'trellis_session')!.value
    expect((await api.get('/v1/devices', token)).status).toBe(200)
    await page.goto(`${stack.httpUrl}/#/`)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    expect((await context.cookies()).find((c) => c.name === 'trellis_session')).toBeUndefined()
    expect((await api.get('/v1/devices', token)).status).toBe(401)
  })

  it('let a browser holding a revoked session cookie sign in again, with the keyboard alone', async () => {
    const revoked = await api.post('/v1/console/session', { email: 'second@example.com', password: 'correct horse battery' })
    const token = /trellis_session=([^;]+)/.exec(revoked.headers.get('set-cookie')!)![1]
    // A bearer token is not signed out here: that would revoke an API token by surprise.
    expect((await api.delete('/v1/console/session', token)).status).toBe(400)
    const signOut = await api.call('DELETE', '/v1/console/session', { headers: { cookie: `trellis_session=${token}`, 'x-csrf-token': revoked.body.csrf } })
    expect(signOut.status).toBe(200)
    expect(signOut.headers.get('set-cookie')).toMatch(/^trellis_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/)
    expect((await api.get('/v1/devices', token)).status).toBe(401)
    await context.addCookies([{ name: 'trellis_session', value: token, url: stack.httpUrl, httpOnly: true, sameSite: 'Strict' }])
    await page.reload()
    // With the keyboard only: Tab to the email field, type, Tab, type, Enter.
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    const focused = () => page.evaluate(() => { const el = (globalThis as any).document.activeElement; return el?.labels?.[0]?.textContent?.trim() ?? el?.textContent ?? '' })
    for (let presses = 0; presses < 10 && !(await focused()).startsWith('Email'); presses++) await page.keyboard.press('Tab')
    expect(await focused()).toMatch(/^Email/)
    await page.keyboard.type('second@example.com')
    await page.keyboard.press('Tab')
    await page.keyboard.type('correct horse battery')
    await page.keyboard.press('Enter')
    await page.getByText('You have no devices yet').waitFor()
  })
})
