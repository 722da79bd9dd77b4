import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import type { Page } from 'playwright-core'
import { topics } from '@trellis/device-sdk'
import { frostlineF2 } from '@trellis/hub/adapters'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { desktop, screenshotDir, startBrowser, unlabelledControls, type TestBrowser } from './browser.js'

let influx: TestInflux
let stack: TestStack
let browser: TestBrowser
let page: Page
const clients: mqtt.MqttClient[] = []

beforeAll(async () => {
  ;[influx, browser] = await Promise.all([startTestInflux(), startBrowser()])
  stack = await startStack({ influxUrl: influx.url })
})

afterAll(async () => {
  await browser?.close()
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

const [goodSample, secondSample] = frostlineF2.samples

describe('the console for a maker', () => {
  it('registers a brand, is shown its token once, signs in with it and declares a model', async () => {
    ;({ page } = await browser.open(stack.httpUrl, desktop))
    await page.getByRole('tab', { name: 'New maker' }).click()
    await page.getByLabel('Brand name').fill('Frostline')
    await page.getByRole('button', { name: 'Register brand' }).click()
    const token = await page.getByLabel('Your maker token').textContent()
    expect(token).toMatch(/\S{20,}/)
    await page.getByRole('button', { name: 'I have saved it, sign in' }).click()
    await expect(page.getByLabel('Maker token').inputValue()).resolves.toBe(token)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('No models yet').waitFor()

    const { mapping: _, ...declaration } = frostlineF2.model
    await page.getByLabel('Declaration (JSON)').fill(JSON.stringify(declaration))
    await page.getByRole('button', { name: 'Declare model' }).click()
    await page.getByRole('heading', { name: 'frostline-f2' }).waitFor()
    await expect(page.getByRole('table', { name: 'Capabilities' }).textContent()).resolves.toContain('targetTemperature')
  })

  it('dry-runs pasted payloads live: reasons before the mapping, canonical readings with it', async () => {
    await page.getByLabel('Sample payloads, one per line').fill(`${goodSample.payload}\nnot json at all`)
    // No mapping yet: the model expects canonical JSON, so both are rejected, with a reason.
    await expect.poll(() => page.locator('[data-result="rejected"]').count(), { timeout: 10_000 }).toBe(2)
    await page.getByLabel('Mapping (JSON)').fill(JSON.stringify(frostlineF2.model.mapping, null, 2))
    const reading = page.locator('[data-result="ok"] [data-reading="temperature"]')
    await expect.poll(() => reading.textContent(), { timeout: 10_000 }).toBe('temperature = 4.2')
    await expect(page.locator('[data-result="ok"] [data-reading="contact"]').textContent()).resolves.toBe('contact = true')
    const rejected = await page.locator('[data-result="rejected"]').textContent()
    expect(rejected).toMatch(/rejected\s+\S+/)
    // A broken edit is said in words, not dumped.
    await page.getByLabel('Mapping (JSON)').fill('{ "format": ')
    await page.getByRole('alert').filter({ hasText: 'The mapping is not valid JSON' }).waitFor()
    await page.getByLabel('Mapping (JSON)').fill(JSON.stringify(frostlineF2.model.mapping, null, 2))
    await page.getByLabel('Sample payloads, one per line').fill(`${goodSample.payload}\n${secondSample.payload}\nnot json at all`)
    await expect.poll(() => page.locator('[data-result="ok"]').count(), { timeout: 10_000 }).toBe(2)
    await page.getByRole('button', { name: 'Save mapping' }).click()
    await page.getByText('Saved: devices of this model use it').waitFor()
    expect(await unlabelledControls(page)).toEqual([])
    await page.screenshot({ path: path.join(screenshotDir, 'maker-mapping.png'), fullPage: true })
  })

  it('provisions a device with its secret and claim code shown once as CSV, and sees its rejected payload in the feed', async () => {
    await page.getByText('No rejected payloads').waitFor()
    await page.getByLabel('How many').fill('2')
    await page.getByRole('button', { name: 'Provision' }).click()
    const csv = await page.getByLabel('Provisioned devices as CSV').inputValue()
    const lines = csv.trim().split('\n')
    expect(lines[0]).toBe('id,secret,claimCode')
    expect(lines).toHaveLength(3)
    const [id, secret, claimCode] = lines[1].split(',')
    expect(secret.length).toBeGreaterThan(10)
    expect(claimCode.length).toBeGreaterThan(3)
    await expect(page.getByRole('link', { name: 'Download CSV' }).getAttribute('download')).resolves.toMatch(/\.csv$/)

    const client = await mqtt.connectAsync(stack.mqttUrl, { clientId: id, username: id, password: secret, reconnectPeriod: 0 })
    clients.push(client)
    await client.publishAsync(topics.telemetry(id), '{"t": "yesterday", "data": {"temps_x10": ["cold"]}}', { qos: 1 })
    const row = page.locator(`tr[data-rejection="${id}"]`)
    await row.waitFor({ timeout: 15_000 })
    expect(await row.textContent()).toContain('yesterday')
    await page.screenshot({ path: path.join(screenshotDir, 'maker-model.png'), fullPage: true })
  })

  it('shows the fleet: provisioned, claimed and online counts', async () => {
    await page.getByRole('link', { name: 'Fleet' }).click()
    await page.getByRole('table', { name: 'Devices' }).waitFor()
    await expect(page.locator('.tile').first().textContent()).resolves.toMatch(/^2 ?devices$/)
    await expect(page.locator('.tile').nth(2).textContent()).resolves.toMatch(/^1 ?online$/)
    await page.screenshot({ path: path.join(screenshotDir, 'maker-fleet.png') })
  })
})
