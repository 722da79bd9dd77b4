import type { CapabilityDeclaration } from '@trellis/device-sdk'
import type { Rng } from './random.js'

/** How a simulator's model is declared by its maker, through the API like any maker would. */
export interface SimulatedModel {
  name: string
  capabilities: CapabilityDeclaration[]
  /** The model's payload dialect; absent for canonical (SDK) devices. */
  mapping?: unknown
}

export interface StartOptions {
  /** Broker URL. */
  url: string
  deviceId: string
  secret: string
  rng: Rng
  /** Report about this often, in ms (jittered ±20%). */
  intervalMs: number
  /** Called for connection errors after start. */
  onError?: (err: Error) => void
}

export interface RunningDevice {
  readonly deviceId: string
  /** Readings or payloads published so far. */
  readonly published: number
  stop (): Promise<void>
}

/** One kind of simulated appliance: its model, and how to run one device of it. */
export interface Simulator {
  /** Stable key, e.g. `thermostat` or `frostline-fridge`. */
  kind: string
  /** Maker shown to owners (brand). */
  brand: string
  model: SimulatedModel
  start (opts: StartOptions): Promise<RunningDevice>
}
