import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestInflux, type TestInflux } from '../support/influx.js'
import { startHubProcess, type HubProcess } from '../support/hub-process.js'
import { apiClient } from '../support/api.js'
import { rawConnection, rawPackets, type RawConnection } from '../support/mqtt.js'
import { eventually } from '../support/wait.js'
import { metricValue, scrape } from '../support/faults.js'

let influx: TestInflux
let dataDir: string
let hub: HubProcess
const connections: RawConnection[] = []

beforeAll(async () => {
  influx = await startTestInflux()
  dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-hub-'))
  hub = await startHubProcess({ influxUrl: influx.url, dataDir })
})

afterAll(async () => {
  for (const c of connections) c.socket.destroy()
  await hub?.kill('SIGKILL')
  await influx?.dispose()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

/**
 * Live heap only: a full GC in the hub first, once presence and its points
 * have settled. The heap (not RSS) is what the hub's own per-device
 * structures cost, and after a full GC it does not depend on how busy the
 * machine is.
 */
async function liveHeap (online: number): Promise<number> {
  await eventually(() => scrape(hub.httpUrl), (text) => metricValue(text, 'trellis_devices_online') === online && metricValue(text, 'trellis_store_buffered_points') === 0, { timeoutMs: 30_000, what: `${online} devices online, no point buffered` })
  // The least of three: a reading can catch a statement or a write in flight, never less than what is held.
  const readings: number[] = []
  for (let i = 0; i < 3; i++) {
    await hub.collectGarbage()
    readings.push(metricValue(await scrape(hub.httpUrl), 'nodejs_heap_size_used_bytes'))
  }
  return Math.min(...readings)
}

async function connectIdle (devices: Array<{ id: string, secret: string }>): Promise<void> {
  const concurrency = 50
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < devices.length) {
      const d = devices[next++]
      const c = await rawConnection(hub.mqttPort, rawPackets.connect({ clientId: d.id, username: d.id, password: d.secret }))
      connections.push(c)
      expect(await c.connack).toBe(0)
    }
  }))
}

describe('an idle authenticated device', () => {
  it('costs the hub at most 7.4 KiB of live heap (socket, aedes client, directory entry, state, presence)', async () => {
    const api = apiClient(hub.httpUrl)
    const maker = await api.post('/v1/makers', { name: 'Idle Appliances' })
    const model = await api.post('/v1/models', { name: 'idle-1', capabilities: ['temperature'] }, maker.body.token)
    const n = 1000
    const devices: Array<{ id: string, secret: string }> = []
    for (let batch = 0; batch < 2; batch++) {
      const provisioned = await api.post('/v1/devices', { model: model.body.id, count: n }, maker.body.token)
      expect(provisioned.status).toBe(201)
      devices.push(...provisioned.body.devices as Array<{ id: string, secret: string }>)
    }

    // Per device over the second half: the first connections also warm code up and size tables once.
    await connectIdle(devices.slice(0, n))
    const atHalf = await liveHeap(n)
    await connectIdle(devices.slice(n))
    const atAll = await liveHeap(2 * n)
    const perDevice = (atAll - atHalf) / n
    console.log(`live heap per idle device: ${(perDevice / 1024).toFixed(2)} KiB`)
    // 7.6 KiB before the packet guard's hooks were shared by all connections, idle states shared one
    // empty readings map and series tags were flat strings; 7.0-7.15 KiB after. The rest is mostly aedes'.
    expect(perDevice).toBeLessThan(7.4 * 1024)
  }, 120_000)
})
