import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { buildConsole } from '../../console/build.js'

/** Debian's chromium, installed by scripts/ensure-chromium.sh. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

export const screenshotDir = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

export const desktop = { width: 1280, height: 800 }
export const phone = { width: 390, height: 844 }

export interface TestBrowser {
  browser: Browser
  /** A fresh context (its own cookies, like another person's browser) with a page on `url`. */
  open (url: string, viewport?: { width: number, height: number }): Promise<{ context: BrowserContext, page: Page }>
  close (): Promise<void>
}

/**
 * Builds the console (so the hub serves the sources as they are now) and
 * launches one headless chromium for a test file; playwright gives it a fresh
 * profile folder and removes it on close. Call `close` from afterAll: it runs
 * when a test failed too.
 */
export async function startBrowser (): Promise<TestBrowser> {
  await buildConsole()
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true })
  return {
    browser,
    async open (url, viewport = desktop) {
      const context = await browser.newContext({ viewport })
      const page = await context.newPage()
      // Fail in seconds, not playwright's 30 s, so a test's own deadline is not what stops it.
      page.setDefaultTimeout(10_000)
      await page.goto(url)
      return { context, page }
    },
    async close () { await browser.close() },
  }
}

/** Elements of the page that take input but have no label a screen reader would announce. */
export async function unlabelledControls (page: Page): Promise<string[]> {
  return await page.$$eval('input, select, textarea, button', (els: any[]) => els.filter((e) => {
    if (e.type === 'hidden') return false
    const named = (e.labels?.length ?? 0) > 0 || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent?.trim())
    return !named
  }).map((e) => String(e.outerHTML).slice(0, 120)))
}
