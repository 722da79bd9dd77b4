import { describe, expect, it } from 'vitest'
import { connectDevice } from '@trellis/device-sdk'
import { useStack } from '../support/file-stack.js'
import { seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Fleet insight: health in full, usage only over cohorts of at least k devices (k = 3 here).

const env = useStack({ consent: { insight: { minCohort: 3 } } })

describe('fleet insight', () => {
  it('gives health spreads and firmware versions, withholds usage aggregates for a cohort below k, and gives them from k devices on', async () => {
    const fleet = await seedFleet(env.api, { makerName: 'Insight Co', count: 3, model: { name: 'sensor-1', capabilities: ['temperature', 'motion', 'rssi', 'firmwareVersion'] } })
    const insight = () => env.api.get(`/v1/models/${fleet.modelId}/insight`, fleet.makerToken)
    const report = async (i: number, temperature: number, rssi: number, firmware: string) => {
      const d = fleet.devices[i]
      const device = await connectDevice({ url: env.stack.mqttUrl, deviceId: d.id, secret: d.secret })
      env.devices.push(device)
      await device.report({ temperature, motion: true, rssi, firmwareVersion: firmware }, Date.now() - 1000)
    }
    await report(0, 20, -50, '1.0.0')
    await report(1, 22, -60, '1.1.0')
    const two = await eventually(insight, (r) => r.body.activeDevices === 2, { what: 'two active devices in the insight' })
    expect(two.status).toBe(200)
    expect(two.body).toMatchObject({ model: fleet.modelId, minCohort: 3, provisioned: 3, claimed: 3, firmwareVersions: { '1.0.0': 1, '1.1.0': 1 } })
    const cap = (r: typeof two, name: string) => r.body.capabilities.find((c: { capability: string }) => c.capability === name)
    expect(cap(two, 'rssi')).toMatchObject({ kind: 'health', devices: 2, distribution: { devices: 2, mean: -55 }, withheld: null })
    for (const usage of ['temperature', 'motion']) {
      expect(cap(two, usage)).toMatchObject({ kind: 'usage', devices: 2, distribution: null, readingsPerDevice: null })
      expect(cap(two, usage).withheld).toContain('at least 3')
    }
    expect(JSON.stringify(two.body)).not.toMatch(/"mean":2[02]\b|"mean":21\b/)

    await report(2, 24, -70, '1.1.0')
    const three = await eventually(insight, (r) => r.body.activeDevices === 3, { what: 'three active devices in the insight' })
    expect(cap(three, 'temperature')).toMatchObject({ kind: 'usage', devices: 3, distribution: { devices: 3, mean: 22, p50: 22 }, withheld: null })
    expect(cap(three, 'motion')).toMatchObject({ devices: 3, readingsPerDevice: 1, withheld: null })
    expect(three.body.firmwareVersions).toEqual({ '1.0.0': 1, '1.1.0': 2 })
  })

  it('answers another maker with 404 and a day yet to come with 400', async () => {
    const a = await seedFleet(env.api, { makerName: 'Insight A' })
    const b = await seedFleet(env.api, { makerName: 'Insight B' })
    expect((await env.api.get(`/v1/models/${a.modelId}/insight`, b.makerToken)).status).toBe(404)
    expect((await env.api.get(`/v1/models/${a.modelId}/insight`, a.ownerToken)).status).toBe(403)
    expect((await env.api.get(`/v1/models/${a.modelId}/insight?day=2999-01-01`, a.makerToken)).status).toBe(400)
    const past = await env.api.get(`/v1/models/${a.modelId}/insight?day=2020-01-01`, a.makerToken)
    expect(past.body).toMatchObject({ day: '2020-01-01', activeDevices: 0, onlineShare: null })
  })
})
