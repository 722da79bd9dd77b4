import type { Device } from '@trellis/device-sdk'

export interface MidIngestKill {
  /** Resolves once every report is acknowledged (the devices re-send what the kill caught in flight). */
  ingest: Promise<void>
  /** Resolves with the killed process's exit, once the kill has been sent. */
  killed: Promise<number | string | null>
  /** Each device's acknowledged timestamps, as they are now. */
  acked: () => number[][]
}

/**
 * Each device reports `perDevice` readings an hour back, a second apart, with
 * up to `window` unacknowledged at a time, and `kill` is called from the
 * acknowledgement that makes a third of them: not from a poll, which on a
 * busy machine can wake after every reading is acknowledged and leave nothing
 * in flight to catch.
 */
export function killMidIngest (devices: Device[], opts: { perDevice: number, window: number, kill: () => Promise<number | string | null> }): MidIngestKill {
  const { perDevice, window } = opts
  const base = Date.now() - 3_600_000
  const acked = devices.map(() => new Set<number>())
  const third = Math.ceil(devices.length * perDevice / 3)
  let ackedTotal = 0
  let killSent!: (exit: Promise<number | string | null>) => void
  const killed = new Promise<Promise<number | string | null>>((resolve) => { killSent = resolve }).then(async (exit) => await exit)
  const ingest = Promise.all(devices.map(async (device, d) => {
    const inFlight = new Set<Promise<void>>()
    for (let i = 0; i < perDevice; i++) {
      const ts = base + i * 1000
      const p: Promise<void> = device.report({ temperature: i % 100 }, ts).then(() => {
        acked[d].add(ts)
        if (++ackedTotal === third) killSent(opts.kill())
      })
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
      if (inFlight.size >= window) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
  })).then(() => {})
  return { ingest, killed, acked: () => acked.map((s) => [...s]) }
}
