import { voltwiseP1 } from '@trellis/hub/adapters'
import { round, runAppliance, type Appliance, type Brand } from './appliance.js'
import type { Rng } from '../random.js'

/**
 * A Voltwise P1 plug with a duty-cycled load behind it (a dehumidifier, say):
 * near its rated draw for part of each cycle, a few watts of standby for the
 * rest. Energy accumulates in watt-hours while the relay is on.
 */
export function voltwiseAppliance (rng: Rng): Appliance {
  let relay = true
  let energyWh = 1000 + Math.round(rng() * 50_000)
  let cycle = rng() * 300
  const cycleSeconds = 300
  const duty = 0.4 + rng() * 0.3
  const rated = 150 + rng() * 600
  let watts = 0
  let volts = 230
  return {
    step (seconds) {
      for (let left = seconds; left > 0; left -= 1) {
        const dt = Math.min(1, left)
        cycle = (cycle + dt) % cycleSeconds
        volts = 230 + (rng() - 0.5) * 6
        watts = !relay ? 0 : cycle < duty * cycleSeconds ? rated * (0.95 + rng() * 0.1) : 2 + rng()
        energyWh += watts * dt / 3600
      }
    },
    telemetry (now) {
      const v = round(volts, 1)
      const w = round(watts, 1)
      const a = round(w / v, 3)
      const wh = round(energyWh, 1)
      const rssi = -55 - Math.round(rng() * 20)
      const payload = `TS=${now};V=${v};A=${a};W=${w};Wh=${wh};RELAY=${relay ? 'ON' : 'OFF'};RSSI=${rssi}`
      return { payload, readings: { power: relay, voltage: v, current: a, powerDraw: w, energy: wh / 1000, rssi } }
    },
    command (payload) {
      const pairs = new Map(payload.toString('utf8').split(';').map((p) => p.split('=') as [string, string]))
      const id = pairs.get('ID')
      if (!id) return null
      const wanted = pairs.get('RELAY')
      if (wanted !== 'ON' && wanted !== 'OFF') return `ID=${id};RESULT=ERR;ERR=RELAY must be ON or OFF`
      relay = wanted === 'ON'
      if (!relay) watts = 0
      return `ID=${id};RESULT=OK;RELAY=${wanted}`
    },
  }
}

export const voltwise: Brand = {
  kind: voltwiseP1.model.name,
  brand: voltwiseP1.brand,
  model: voltwiseP1.model,
  start: async (opts) => await runAppliance(opts, voltwiseAppliance(opts.rng ?? Math.random)),
}
