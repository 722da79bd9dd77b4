import { seededRng, seedOf } from './random.js'
import type { RunningDevice, Simulator } from './simulator.js'

export interface FleetDevice { id: string, secret: string, kind: string }

export interface FleetOptions {
  /** Broker URL. */
  url: string
  devices: readonly FleetDevice[]
  simulators: readonly Simulator[]
  /** Each device reports about this often, in ms. Default 5000. */
  intervalMs?: number
  /** Devices connecting at once. Default 50. */
  connectConcurrency?: number
  onError?: (deviceId: string, err: Error) => void
  /** Called as devices come up, for progress output. */
  onProgress?: (connected: number, total: number) => void
}

export interface Fleet {
  readonly devices: readonly RunningDevice[]
  readonly failed: ReadonlyArray<{ deviceId: string, error: string }>
  published (): number
  stop (): Promise<void>
}

/** Starts every device of the fleet with its kind's simulator. */
export async function startFleet (opts: FleetOptions): Promise<Fleet> {
  const byKind = new Map(opts.simulators.map((s) => [s.kind, s]))
  const running: RunningDevice[] = []
  const failed: Array<{ deviceId: string, error: string }> = []
  const queue = [...opts.devices]
  const concurrency = opts.connectConcurrency ?? 50
  const worker = async () => {
    for (let d = queue.shift(); d; d = queue.shift()) {
      const sim = byKind.get(d.kind)
      if (!sim) {
        failed.push({ deviceId: d.id, error: `no simulator for kind ${d.kind}` })
        continue
      }
      try {
        const device = d
        running.push(await sim.start({
          url: opts.url,
          deviceId: device.id,
          secret: device.secret,
          rng: seededRng(seedOf(device.id)),
          intervalMs: opts.intervalMs ?? 5000,
          onError: (err) => opts.onError?.(device.id, err),
        }))
        opts.onProgress?.(running.length, opts.devices.length)
      } catch (err) {
        failed.push({ deviceId: d.id, error: (err as Error).message })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, opts.devices.length) }, worker))
  return {
    devices: running,
    failed,
    published: () => running.reduce((n, d) => n + d.published, 0),
    async stop () {
      await Promise.all(running.map((d) => d.stop().catch(() => {})))
    },
  }
}
