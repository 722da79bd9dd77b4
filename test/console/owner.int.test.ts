import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { brands, seededRng, type RunningDevice } from '@trellis/simulators'
import { connectDevice, type Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startStack, type TestStack } from '../support/stack.js'
import { apiClient } from '../support/api.js'
import { desktop, phone, screenshotDir, startBrowser, unlabelledControls, type TestBrowser } from './browser.js'

const frostline = brands.find((b) => b.kind === 'frostline-f2')!

let influx: TestInflux
let stack: TestStack
let browser: TestBrowser
let page: Page
const simulated: RunningDevice[] = []
const sdkDevices: Device[] = []
let device: { id: string, secret: string, claimCode: string }

beforeAll(async () => {
  ;[influx, browser] = await Promise.all([startTestInflux(), startBrowser()])
  stack = await startStack({ influxUrl: influx.url })
  // Frostline's maker declares its fridge, dialect and all, and provisions one.
  const api = apiClient(stack.httpUrl)
  const maker = await api.post('/v1/makers', { name: frostline.brand })
  const model = await api.post('/v1/models', frostline.model, maker.body.token)
  const provisioned = await api.post('/v1/devices', { model: model.body.id, count: 1 }, maker.body.token)
  device = provisioned.body.devices[0]
})

afterAll(async () => {
  await browser?.close()
  await Promise.all(simulated.map((d) => d.stop().catch(() => {})))
  await Promise.all(sdkDevices.map((d) => d.close().catch(() => {})))
  await stack?.close()
  await influx?.dispose()
})

describe('the console for an owner', () => {
  it('signs up, claims a Frostline fridge by its code, and sees its readings arrive without a reload', async () => {
    ;({ page } = await browser.open(stack.httpUrl, desktop))
    await page.getByRole('tab', { name: 'New owner' }).click()
    await page.getByLabel('Email').fill('ada@example.com')
    await page.getByLabel('Password').fill('correct horse battery')
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.getByText('You have no devices yet').waitFor()
    await page.screenshot({ path: path.join(screenshotDir, 'owner-empty.png') })

    await page.getByLabel('Claim code').fill(device.claimCode)
    await page.getByRole('button', { name: 'Claim device' }).click()
    const card = page.locator(`[data-device="${device.id}"]`)
    await card.waitFor()
    await expect(card.textContent()).resolves.toContain('Frostline')
    await page.locator('[data-live="live"]').waitFor()

    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => { (globalThis as { mark?: number }).mark = 1 })
    simulated.push(await frostline.start({ url: stack.mqttUrl, deviceId: device.id, secret: device.secret, rng: seededRng(7), intervalMs: 400 }))
    const temperature = card.locator('[data-capability="temperature"] dd')
    await temperature.waitFor({ timeout: 15_000 })
    await expect.poll(async () => Number(await temperature.textContent()), { timeout: 10_000 }).toBeGreaterThan(-50)
    await card.getByText('online').waitFor()
    expect(await page.evaluate(() => (globalThis as { mark?: number }).mark)).toBe(1)
    expect(await unlabelledControls(page)).toEqual([])
    await page.screenshot({ path: path.join(screenshotDir, 'owner-devices.png') })
  })

  it('sets the fridge\'s target temperature with its slider and sees ok, then the new state', async () => {
    await page.locator(`[data-device="${device.id}"] a`).first().click()
    await page.getByRole('heading', { name: /Frostline frostline-f2/ }).waitFor()
    const slider = page.locator('[data-control="targetTemperature"] input[type="range"]')
    await expect(slider.getAttribute('min')).resolves.toBe('1')
    await expect(slider.getAttribute('max')).resolves.toBe('8')
    await slider.fill('6')
    const outcome = page.locator('[data-control="targetTemperature"] output')
    await expect.poll(() => outcome.textContent(), { timeout: 15_000 }).toBe('ok')
    // The fridge reports its new setpoint in its next telemetry, which the stream brings.
    const state = page.locator('tr[data-capability="targetTemperature"] td.value')
    await expect.poll(() => state.textContent(), { timeout: 15_000 }).toMatch(/^6 °C/)
  })

  it('draws the temperature history from the stored points', async () => {
    // At least three stored points before drawing. Polled twice a second: history reads are limited to 5 a second per token
    // (burst 20), and a faster poll would spend the budget the chart's own refresh needs.
    await expect.poll(async () => (await page.evaluate(async (id) => {
      const r = await fetch(`/v1/devices/${id}/telemetry?capability=temperature`)
      return ((await r.json()) as { points?: unknown[] }).points?.length ?? 0
    }, device.id)), { timeout: 15_000, interval: 500 }).toBeGreaterThanOrEqual(3)
    await page.getByRole('button', { name: 'Refresh' }).click()
    const chart = page.locator('[data-chart="temperature"]')
    // The chart drawn on opening the page may have fewer; wait for the refreshed one.
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThanOrEqual(3)
    const drawn = await chart.evaluate((el: any) => {
      const u = el.uplot as { data: Array<Array<number | null>> }
      const canvas = el.querySelector('canvas')
      const pixels: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
      let inked = 0
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++
      return { xs: u.data[0], ys: u.data[1], inked }
    })
    expect(drawn.xs.length).toBeGreaterThanOrEqual(3)
    expect(drawn.inked).toBeGreaterThan(50)
    // Every drawn point is a stored reading, at its time.
    const stored = await page.evaluate(async (id) => {
      const r = await fetch(`/v1/devices/${id}/telemetry?capability=temperature`)
      return ((await r.json()) as { points: Array<{ ts: string, value: number }> }).points
    }, device.id)
    const byTime = new Map(stored.map((p) => [Date.parse(p.ts) / 1000, p.value]))
    drawn.xs.forEach((x, i) => expect(byTime.get(x!)).toBe(drawn.ys[i]))
    // Per-minute means: one point per minute, at the minute.
    await page.getByLabel('Aggregation').selectOption('mean')
    const drawnData = () => chart.evaluate((el: any) => el.uplot.data as Array<Array<number | null>>)
    await expect.poll(drawnData).toSatisfy((data: Array<Array<number | null>>) => data[0].length > 0 && data[0].every((x) => x! % 60 === 0))
    const means = await drawnData()
    expect(means[1].some((y) => typeof y === 'number')).toBe(true)
    // The time axis shows the hour asked for (and the minute either side), however few the points: one mean made it span years.
    const axis = await chart.evaluate((el: any) => ({ min: el.uplot.scales.x.min as number, max: el.uplot.scales.x.max as number }))
    expect(axis.max - axis.min).toBeLessThanOrEqual(3600 + 120)
    expect(Math.abs(axis.max - (Date.now() / 1000 + 60))).toBeLessThan(120)
    await page.screenshot({ path: path.join(screenshotDir, 'owner-device.png'), fullPage: true })
  })

  it('sets where the fridge is installed, refuses a zone that does not exist in words, and clears it', async () => {
    // What the hub holds, asked with the page's own session.
    const zoneAtHub = () => page.evaluate(async (id) => ((await (await fetch(`/v1/devices/${id}`)).json()) as { timeZone: string | null }).timeZone, device.id)
    const card = page.locator('[data-time-zone]')
    await expect(card.getAttribute('data-time-zone')).resolves.toBe('')
    await expect(card.textContent()).resolves.toContain('Not set')
    expect(await unlabelledControls(page)).toEqual([])
    const field = card.getByLabel('Time zone')
    await field.fill('europe/lisbon')
    await card.getByRole('button', { name: 'Save time zone' }).click()
    // The hub keeps the zone database's spelling, and the page shows what the hub kept.
    await expect.poll(() => card.getAttribute('data-time-zone')).toBe('Europe/Lisbon')
    await card.locator('output', { hasText: 'saved' }).waitFor()
    expect(await zoneAtHub()).toBe('Europe/Lisbon')

    await field.fill('Mars/Olympus_Mons')
    await card.getByRole('button', { name: 'Save time zone' }).click()
    await expect(card.getByRole('alert').textContent()).resolves.toMatch(/IANA time zone/)
    // Refused: the zone kept is still the last one saved.
    await expect(card.getAttribute('data-time-zone')).resolves.toBe('Europe/Lisbon')

    await card.getByRole('button', { name: 'Clear' }).click()
    await expect.poll(() => card.getAttribute('data-time-zone')).toBe('')
    expect(await zoneAtHub()).toBeNull()
  })

  it('fits a phone screen: no sideways scrolling on the device list or the device page', async () => {
    await page.setViewportSize(phone)
    await page.goto(`${stack.httpUrl}/#/`)
    await page.locator(`[data-device="${device.id}"]`).waitFor()
    const overflow = () => page.evaluate(() => { const g = globalThis as any; return g.document.documentElement.scrollWidth - g.innerWidth })
    expect(await overflow()).toBeLessThanOrEqual(0)
    await page.screenshot({ path: path.join(screenshotDir, 'owner-phone.png') })
    await page.goto(`${stack.httpUrl}/#/devices/${device.id}`)
    await page.locator('[data-chart="temperature"]').waitFor()
    expect(await overflow()).toBeLessThanOrEqual(0)
  })

  it('schedules a setpoint on weekday mornings, and pauses it', async () => {
    await page.setViewportSize(desktop)
    await page.getByRole('link', { name: 'Schedules' }).click()
    await page.getByText('No schedules yet').waitFor()
    await page.getByLabel('When (cron').fill('0 7 * * 1-5')
    await page.getByLabel('Time zone').fill('Europe/Paris')
    await page.getByLabel('Capability to set').fill('targetTemperature')
    await page.getByLabel('Value').fill('5')
    await page.getByRole('button', { name: 'Add schedule' }).click()
    const row = page.getByRole('table', { name: 'Schedules' }).locator('tbody tr')
    await row.waitFor()
    await expect(row.textContent()).resolves.toContain('set targetTemperature to 5')
    await page.screenshot({ path: path.join(screenshotDir, 'owner-schedules.png') })
    await row.getByRole('button', { name: 'Pause' }).click()
    await row.getByRole('button', { name: 'Resume' }).waitFor()
    await expect(row.textContent()).resolves.toContain('paused')
    // A value out of the model's range is refused in words.
    await page.getByLabel('Value').fill('40')
    await page.getByRole('button', { name: 'Add schedule' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/targetTemperature.*8/)
  })

  it('shows a switch, an enum select and an action button with their ok, error and timeout outcomes', async () => {
    const api = apiClient(stack.httpUrl)
    const maker = await api.post('/v1/makers', { name: 'Lumen' })
    const capabilities = ['power', { name: 'mode', enum: ['eco', 'boost'] }]
    const model = await api.post('/v1/models', { name: 'lamp-1', capabilities }, maker.body.token)
    const [lamp] = (await api.post('/v1/devices', { model: model.body.id, count: 1 }, maker.body.token)).body.devices
    const sdk = await connectDevice({ url: stack.mqttUrl, deviceId: lamp.id, secret: lamp.secret, capabilities: capabilities as never })
    sdkDevices.push(sdk)
    sdk.onCommand('power', (on: boolean) => ({ power: on }))
    sdk.onCommand('mode', () => { throw new Error('the lamp is stuck in eco') })
    // Identifying never finishes: the hub gives up after the console's 5 s wait.
    sdk.onCommand('identify', () => new Promise(() => {}))

    await page.getByRole('link', { name: 'Devices' }).click()
    await page.getByLabel('Claim code').fill(lamp.claimCode)
    await page.getByRole('button', { name: 'Claim device' }).click()
    await page.locator(`[data-device="${lamp.id}"] a`).first().click()
    await page.getByRole('heading', { name: /Lumen lamp-1/ }).waitFor()

    await page.getByRole('switch', { name: 'power' }).check()
    await expect.poll(() => page.locator('[data-control="power"] output').textContent()).toBe('ok')
    await expect.poll(() => page.locator('tr[data-capability="power"] td.value').textContent()).toBe('on')
    await page.getByLabel('mode').selectOption('boost')
    await expect.poll(() => page.locator('[data-control="mode"] output').textContent()).toBe('error: the lamp is stuck in eco')
    await page.getByRole('button', { name: 'identify' }).click()
    const identify = page.locator('[data-control="action:identify"] output')
    await expect.poll(() => identify.textContent()).toBe('pending')
    await expect.poll(() => identify.textContent(), { timeout: 15_000 }).toMatch(/^timeout/)
    await page.screenshot({ path: path.join(screenshotDir, 'owner-controls.png') })
  })
})
