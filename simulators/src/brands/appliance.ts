import { connectDevice, type Device, type ReadingValue } from '@trellis/device-sdk'
import type { BuiltInDialect } from '@trellis/hub/adapters'
import type { Rng } from '../random.js'
import type { RunningDevice, Simulator } from '../simulator.js'

export { clamp, round } from '../random.js'

/** What every brand simulator is started with: the fleet's StartOptions, with defaults. */
export interface BrandStartOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string
  deviceId: string
  secret: string
  /** Random numbers in [0, 1). Default Math.random; pass `seededRng(n)` for a repeatable run. */
  rng?: Rng
  /** Report about this often, in ms (jittered ±20%). Default 5000. */
  intervalMs?: number
  /** Simulated seconds per real second, so slow physics (a wash programme) shows in a demo. Default: the brand's own. */
  timeScale?: number
  /** Called for connection and publish errors after start. */
  onError?: (err: Error) => void
}

export interface BrandSimulator extends RunningDevice {
  readonly device: Device
  /** Publishes one report now; resolves with the canonical readings it encodes, which the hub should store. */
  report (): Promise<Record<string, ReadingValue>>
}

/**
 * A simulated brand: its model declaration (the built-in mapping data) and
 * how to run one appliance of it, speaking the brand's dialect.
 */
export interface Brand extends Simulator {
  readonly model: BuiltInDialect['model']
  start (opts: BrandStartOptions): Promise<BrandSimulator>
}

/** The physics and firmware of one appliance, apart from MQTT. */
export interface Appliance {
  /** Advances the simulation by `seconds` of appliance time. */
  step (seconds: number): void
  /** The telemetry payload in the brand's dialect, and the canonical readings it stands for. */
  telemetry (now: number): { payload: string, readings: Record<string, ReadingValue> }
  /** Answers a command payload in the dialect: the ack payload, or null to ignore it as the firmware would. */
  command (payload: Buffer): string | null
}

/** Connects an appliance, reports at once and then on a timer, and answers commands in its dialect. */
export async function runAppliance (opts: BrandStartOptions, appliance: Appliance, defaultTimeScale = 1): Promise<BrandSimulator> {
  const intervalMs = opts.intervalMs ?? 5000
  const timeScale = opts.timeScale ?? defaultTimeScale
  const rng = opts.rng ?? Math.random
  const onError = (err: Error) => opts.onError?.(err)
  const device = await connectDevice({ url: opts.url, deviceId: opts.deviceId, secret: opts.secret, rawCommands: true })
  device.on('error', onError)
  let published = 0
  let last = Date.now()
  const report = async () => {
    const now = Date.now()
    appliance.step(((now - last) / 1000) * timeScale)
    last = now
    const { payload, readings } = appliance.telemetry(now)
    await device.publishRaw(payload)
    published++
    return readings
  }
  device.on('rawCommand', (payload: Buffer) => {
    const ack = appliance.command(payload)
    if (ack === null) return
    // Report the consequence at once, as a real appliance would after acting.
    device.publishRaw(ack, 'acks').then(() => report()).catch(onError)
  })
  let timer: NodeJS.Timeout
  let stopped = false
  const schedule = () => {
    if (stopped) return
    timer = setTimeout(() => {
      (device.connected ? report() : Promise.resolve()).catch(onError).finally(schedule)
    }, intervalMs * (0.8 + rng() * 0.4))
  }
  await report()
  schedule()
  return {
    deviceId: opts.deviceId,
    get published () { return published },
    device,
    report,
    async stop () {
      stopped = true
      clearTimeout(timer)
      await device.close()
    },
  }
}

/** Parses a JSON command, or null when the payload is not a JSON object. */
export function jsonCommand (payload: Buffer): Record<string, any> | null {
  try {
    const value = JSON.parse(payload.toString('utf8'))
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null
  } catch {
    return null
  }
}
