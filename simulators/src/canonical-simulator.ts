import { connectDevice, type CommandHandler, type Device } from '@trellis/device-sdk'
import { canonicalKinds, type CanonicalKind } from './canonical.js'
import type { RunningDevice, Simulator, StartOptions } from './simulator.js'

/** Runs a canonical kind through the device SDK: reports on a timer, obeys commands, acks with the new state. */
export function canonicalSimulator (kind: CanonicalKind): Simulator {
  return {
    kind: kind.kind,
    brand: 'Trellis Reference Devices',
    model: kind.model,
    async start (opts: StartOptions): Promise<RunningDevice> {
      const behaviour = kind.create(opts.rng)
      // Handlers go in at connect: commands queued while the device was away arrive right after it subscribes.
      const handlers: Record<string, CommandHandler> = {}
      for (const [capability, apply] of Object.entries(behaviour.commands)) {
        handlers[capability] = (value) => {
          const changed = apply(value)
          // Report the consequence at once, as a real device would after acting.
          setImmediate(() => { void report().catch((err: Error) => opts.onError?.(err)) })
          return changed
        }
      }
      let published = 0
      let last = Date.now()
      let device: Device | undefined
      async function report (): Promise<void> {
        const now = Date.now()
        const readings = behaviour.tick(now - last)
        last = now
        if (!device?.connected) return
        await device.report(readings, now)
        published++
      }
      device = await connectDevice({ url: opts.url, deviceId: opts.deviceId, secret: opts.secret, capabilities: kind.model.capabilities, handlers })
      device.on('error', (err: Error) => opts.onError?.(err))
      const connected = device
      let timer: NodeJS.Timeout
      let stopped = false
      const schedule = () => {
        if (stopped) return
        timer = setTimeout(() => {
          report().catch((err: Error) => opts.onError?.(err)).finally(schedule)
        }, opts.intervalMs * (0.8 + opts.rng() * 0.4))
      }
      await report()
      schedule()
      return {
        deviceId: opts.deviceId,
        get published () { return published },
        async stop () {
          stopped = true
          clearTimeout(timer)
          await connected.close()
        },
      }
    },
  }
}

export const canonicalSimulators: readonly Simulator[] = canonicalKinds.map(canonicalSimulator)
