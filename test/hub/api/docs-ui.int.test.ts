import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestInflux, type TestInflux } from '../../support/influx.js'
import { startStack, type TestStack } from '../../support/stack.js'
import { startBrowser, type TestBrowser } from '../../console/browser.js'

// Swagger UI at /docs, served from this origin (swagger-ui-dist's files), under a policy that
// allows it only what it needs: a real browser reports every Content-Security-Policy violation.

let influx: TestInflux
let stack: TestStack
let browser: TestBrowser

beforeAll(async () => {
  ;[influx, browser] = await Promise.all([startTestInflux(), startBrowser()])
  stack = await startStack({ influxUrl: influx.url })
})

afterAll(async () => {
  await browser?.close()
  await stack?.close()
  await influx?.dispose()
})

const strictPolicy = "default-src 'none'; frame-ancestors 'none'"

/** `script-src 'self'` → ["'self'"]; absent → null. */
function directive (policy: string, name: string): string[] | null {
  const found = policy.split(';').map((d) => d.trim().split(/\s+/)).find(([n]) => n === name)
  return found ? found.slice(1) : null
}

describe('Swagger UI at /docs', () => {
  it('serves its page, its script and styles from this origin, and an initializer script that loads /docs/json', async () => {
    const page = await fetch(`${stack.httpUrl}/docs`, { headers: { accept: 'text/html,application/xhtml+xml' } })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await page.text()
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => /\bsrc="([^"]+)"/.exec(m[1])?.[1])
    expect(scripts.length, 'Swagger UI\'s bundle and the initializer').toBeGreaterThanOrEqual(2)
    expect(scripts.every((src) => src?.startsWith('/docs/')), `every script is a file of /docs: ${scripts.join(', ')}`).toBe(true)
    expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/)
    const styles = [...html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*>/g)].map((m) => /\bhref="([^"]+)"/.exec(m[0])?.[1])
    expect(styles.length).toBeGreaterThanOrEqual(1)
    expect(html).not.toMatch(/https?:\/\//)

    const bodies: string[] = []
    for (const [urls, type] of [[scripts, 'text/javascript; charset=utf-8'], [styles, 'text/css; charset=utf-8']] as const) {
      for (const url of urls) {
        const res = await fetch(`${stack.httpUrl}${url}`)
        expect(res.status, url).toBe(200)
        expect(res.headers.get('content-type'), url).toBe(type)
        expect(res.headers.get('x-content-type-options'), url).toBe('nosniff')
        // swagger-ui-dist's files name its version and may be kept; our initializer changes with the hub.
        expect(res.headers.get('cache-control'), url).toBe(/swagger-ui/.test(url ?? '') ? 'public, max-age=86400' : 'no-store')
        bodies.push(await res.text())
      }
    }
    expect(bodies.some((b) => b.includes('SwaggerUIBundle=') || b.includes('SwaggerUIBundle ='))).toBe(true)
    const initializer = bodies.find((b) => b.length < 4000 && b.includes('SwaggerUIBundle('))
    expect(initializer, 'a short script of our own starts Swagger UI').toBeDefined()
    expect(initializer).toMatch(/url: '\/docs\/json'/)
    expect(bodies.join('\n')).not.toMatch(/petstore/)
    expect(page.headers.get('cache-control')).toBe('no-store')

    // Only the files the page loads: not the rest of swagger-ui-dist, nothing outside it.
    for (const file of ['index.html', 'swagger-initializer.js', 'package.json', '..%2F..%2Fpackage.json', 'toString', 'constructor']) {
      const res = await fetch(`${stack.httpUrl}/docs/assets/${file}`)
      expect(res.status, file).toBe(404)
      expect((await res.json() as { error: { code: string } }).error.code, file).toBe('NOT_FOUND')
    }

    // The page's policy: scripts and styles from this origin only, no inline script, no eval, no other origin.
    const policy = page.headers.get('content-security-policy')!
    expect(directive(policy, 'default-src')).toEqual(["'none'"])
    expect(directive(policy, 'script-src')).toEqual(["'self'"])
    expect(directive(policy, 'style-src')).toEqual(["'self'"])
    expect(directive(policy, 'connect-src')).toEqual(["'self'"])
    expect(directive(policy, 'frame-ancestors')).toEqual(["'none'"])
    expect(policy).not.toMatch(/https?:|\*|unsafe-eval/)

    // The rest of the API keeps its strict policy: the JSON, the API routes, an unknown path.
    for (const url of ['/docs/json', '/healthz', '/v1/devices', '/docs/nothing-here']) {
      const res = await fetch(`${stack.httpUrl}${url}`)
      expect(res.headers.get('content-security-policy'), url).toBe(strictPolicy)
    }
    const json = await fetch(`${stack.httpUrl}/docs`)
    expect(json.headers.get('content-type')).toContain('application/json')
    expect(json.headers.get('content-security-policy')).toBe(strictPolicy)
  })

  it('lists every operation with its operation id in a real browser, tries one, and breaks no Content-Security-Policy', async () => {
    const doc = await (await fetch(`${stack.httpUrl}/docs/json`)).json() as { paths: Record<string, Record<string, { operationId: string }>> }
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops))

    const { context, page } = await browser.open('about:blank')
    try {
      const problems: string[] = []
      page.on('console', (message) => { if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) problems.push(`console ${message.type()}: ${message.text()}`) })
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
      page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`))
      // Injected by the browser's debugging protocol, so the page's own policy does not block it.
      await context.addInitScript(() => {
        const g = globalThis as any
        g.document.addEventListener('securitypolicyviolation', (e: any) => { (g.cspViolations ??= []).push(`${e.violatedDirective} ${e.blockedURI}`) })
      })
      await page.goto(`${stack.httpUrl}/docs`)

      await page.locator('.opblock-summary-operation-id', { hasText: /^listDevices$/ }).waitFor()
      await page.locator('.opblock-summary-path', { hasText: /^\/v1\/devices$/ }).first().waitFor()
      expect(await page.locator('.opblock').count(), 'every operation of /docs/json is on the page').toBe(operations.length)
      const shown = await page.locator('.opblock-summary-operation-id').allTextContents()
      expect(new Set(shown)).toEqual(new Set(operations.map((op) => op.operationId)))

      // Try it out: Swagger UI calls the API from the page (connect-src 'self').
      const health = page.locator('.opblock', { has: page.locator('.opblock-summary-operation-id', { hasText: /^health$/ }) })
      await health.locator('.opblock-summary-control').click()
      await health.getByRole('button', { name: 'Try it out' }).click()
      await health.getByRole('button', { name: 'Execute' }).click()
      await health.locator('.live-responses-table .response-col_status', { hasText: /^(200|503)$/ }).waitFor()
      // The answer's schema, and the dialog that takes a bearer token.
      await health.getByRole('tab', { name: 'Schema' }).first().click()
      await health.locator('.model-box').first().waitFor()
      await page.locator('.btn.authorize').first().click()
      await page.locator('.dialog-ux .auth-container').first().waitFor()
      await page.locator('.dialog-ux .close-modal').first().click()

      expect(await page.evaluate(() => (globalThis as any).cspViolations ?? [])).toEqual([])
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })
})
