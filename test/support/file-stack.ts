import { afterAll, beforeAll } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { Device } from '@trellis/device-sdk'
import { startTestInflux, type TestInflux } from './influx.js'
import { startStack, type TestStack, type TestStackOptions } from './stack.js'
import { apiClient, type ApiClient } from './api.js'

/** What `useStack` gives a test file once its `beforeAll` has run. */
export interface FileStack {
  readonly influx: TestInflux
  readonly stack: TestStack
  readonly api: ApiClient
  /** Raw MQTT clients the tests open (firmware played byte for byte): ended after the file's tests. */
  readonly clients: MqttClient[]
  /** SDK devices the tests connect: closed after the file's tests. */
  readonly devices: Device[]
}

/**
 * One managed influxd and one hub (broker, API, its own database) for a whole
 * test file, started before its tests and stopped after them, with the raw
 * MQTT clients and SDK devices the tests opened. Call it at the top of the
 * file; an `afterAll` the file registers after it runs first (vitest runs
 * after-hooks in reverse), so what the file started itself stops while the hub
 * is still up.
 */
export function useStack (opts: Omit<TestStackOptions, 'influxUrl'> = {}): FileStack {
  let influx: TestInflux | undefined
  let stack: TestStack | undefined
  let api: ApiClient | undefined
  const clients: MqttClient[] = []
  const devices: Device[] = []
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started yet: use it inside a test or a hook`)
    return value
  }
  beforeAll(async () => {
    influx = await startTestInflux()
    stack = await startStack({ ...opts, influxUrl: influx.url })
    api = apiClient(stack.httpUrl)
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    await Promise.all(devices.map((d) => d.close().catch(() => {})))
    await stack?.close()
    await influx?.dispose()
  })
  return {
    get influx () { return ready(influx, 'influxd') },
    get stack () { return ready(stack, 'the hub') },
    get api () { return ready(api, 'the API client') },
    clients,
    devices,
  }
}
