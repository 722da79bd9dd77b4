import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { topics } from '@trellis/device-sdk'
import { influxQuery } from '../support/influx.js'
import { useStack } from '../support/file-stack.js'
import { apiClient, seedFleet } from '../support/api.js'
import { eventually } from '../support/wait.js'

// Issue #17, finding 6: a device's clock decides neither what the latest state is nor which shards InfluxDB opens.
const HOUR = 3_600_000
const DAY = 24 * HOUR

const env = useStack()

async function thermometer () {
  const fleet = await seedFleet(apiClient(env.stack.httpUrl), { model: { name: 'thermo-t', capabilities: ['temperature'] } })
  const [d] = fleet.devices
  const client = await mqtt.connectAsync(env.stack.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, protocolVersion: 4, reconnectPeriod: 0 })
  env.clients.push(client)
  const report = (temperature: number, ts: number) => client.publishAsync(topics.telemetry(d.id), JSON.stringify({ ts, readings: { temperature } }), { qos: 1 })
  return { ...fleet, id: d.id, report }
}

const rejectionsOf = (deviceId: string) => env.stack.hub.deadLetters.recent().filter((l) => l.deviceId === deviceId).map((l) => l.reason)

describe('device time within a window', () => {
  it('refuses a reading stamped hours ahead with a reason, and later real readings move the latest state', async () => {
    const d = await thermometer()
    await d.report(99, Date.now() + 23 * HOUR)
    await d.report(21, Date.now())
    const state = await eventually(() => env.stack.hub.state.get(d.id)?.readings.get('temperature')?.value, (v) => v !== undefined, { what: 'a latest temperature' })
    expect(state).toBe(21)
    expect(rejectionsOf(d.id)).toEqual([expect.stringMatching(/ahead of the hub's clock.*at most 5 minutes/)])
    await d.report(22, Date.now())
    await eventually(() => env.stack.hub.state.get(d.id)?.readings.get('temperature')?.value, (v) => v === 22, { what: 'the next reading in the latest state' })
  })

  it('lets arrival order decide the latest state within the allowed skew', async () => {
    const d = await thermometer()
    await d.report(30, Date.now() + 4 * 60_000)
    await eventually(() => env.stack.hub.state.get(d.id)?.readings.get('temperature')?.value, (v) => v === 30, { what: 'the reading stamped ahead' })
    await d.report(20, Date.now())
    await eventually(() => env.stack.hub.state.get(d.id)?.readings.get('temperature')?.value, (v) => v === 20, { what: 'the reading that came after it' })
  })

  it('refuses readings older than the horizon with a reason, and stores those within it', async () => {
    const d = await thermometer()
    const yearly = [Date.UTC(2000, 0, 3), Date.now() - 30 * DAY]
    for (const ts of yearly) await d.report(10, ts)
    await d.report(11, Date.now() - 2 * DAY)
    await eventually(() => rejectionsOf(d.id), (r) => r.length === 2, { what: 'two rejections' })
    for (const reason of rejectionsOf(d.id)) expect(reason).toMatch(/older than the 21-day horizon/)
    const stored = await eventually(async () => (await influxQuery(env.influx.url, `SELECT count("value") FROM "temperature" WHERE "device" = '${d.id}'`))[0]?.count, (n) => n !== undefined, { what: 'the reading within the horizon stored' })
    expect(stored).toBe(1)
    const shards = await influxQuery(env.influx.url, 'SHOW SHARDS')
    expect(JSON.stringify(shards)).not.toContain('2000-01')
  })
})
