import { connectDevice, type Device, type ReadingValue } from '@trellis/device-sdk'
import type { BuiltInDialect } from '@trellis/hub/adapters'

/** What every brand simulator is started with. */
export interface BrandSimulatorOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string
  deviceId: string
  secret: string
  /** Random numbers in [0, 1). Default Math.random; pass `seededRandom(n)` for a repeatable run. */
  rng?: () => number
  /** How often the appliance reports, in ms. Default 5000. */
  reportIntervalMs?: number
  /** Simulated seconds per real second, so slow physics (a wash programme) shows in a demo. Default: the brand's own. */
  timeScale?: number
}

export interface BrandSimulator {
  readonly device: Device
  /** Publishes one report now; resolves with the canonical readings it encodes, which the hub should store. */
  report (): Promise<Record<string, ReadingValue>>
  /** Stops reporting and disconnects cleanly. */
  stop (): Promise<void>
}

/** A simulated brand: its model declaration (mapping data) and how to run one appliance of it. */
export interface Brand {
  readonly brand: string
  readonly model: BuiltInDialect['model']
  start (opts: BrandSimulatorOptions): Promise<BrandSimulator>
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

/** A small repeatable generator (mulberry32): same seed, same fleet behaviour. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const round = (value: number, decimals: number): number => {
  const f = 10 ** decimals
  return Math.round(value * f) / f
}

export const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))

/** Connects an appliance, reports on a timer and answers commands in its dialect. */
export async function runAppliance (opts: BrandSimulatorOptions, appliance: Appliance, defaultTimeScale = 1): Promise<BrandSimulator> {
  const intervalMs = opts.reportIntervalMs ?? 5000
  const timeScale = opts.timeScale ?? defaultTimeScale
  const device = await connectDevice({ url: opts.url, deviceId: opts.deviceId, secret: opts.secret, rawCommands: true })
  // A failed publish while the broker restarts is not fatal: the next report carries the state.
  device.on('error', () => {})
  let last = Date.now()
  const report = async () => {
    const now = Date.now()
    appliance.step(((now - last) / 1000) * timeScale)
    last = now
    const { payload, readings } = appliance.telemetry(now)
    await device.publishRaw(payload)
    return readings
  }
  device.on('rawCommand', (payload: Buffer) => {
    const ack = appliance.command(payload)
    if (ack === null) return
    void device.publishRaw(ack, 'acks').then(() => report()).catch(() => {})
  })
  const timer = setInterval(() => { void report().catch(() => {}) }, intervalMs)
  timer.unref()
  return {
    device,
    report,
    async stop () {
      clearInterval(timer)
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
