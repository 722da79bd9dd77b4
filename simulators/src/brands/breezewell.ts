import { breezewellAp3 } from '@trellis/hub/adapters'
import { clamp, jsonCommand, round, runAppliance, type Appliance, type Brand } from './appliance.js'
import type { Rng } from '../random.js'

const modes = ['auto', 'sleep', 'manual'] as const

/**
 * A Breezewell AP-3 purifier: outdoor air seeps in and raises PM2.5; the fan,
 * when running, filters it out in proportion to its speed. In auto mode the
 * fan follows the air quality.
 */
export function breezewellAppliance (rng: Rng): Appliance {
  let power = true
  let mode = 0
  let fan = 0.4
  let pm25 = 40 + rng() * 40
  let humidity = 45 + rng() * 10
  let messageId = 1
  return {
    step (seconds) {
      for (let left = seconds; left > 0; left -= 1) {
        const dt = Math.min(1, left)
        const outdoor = 60 + rng() * 20
        if (power && modes[mode] === 'auto') fan = clamp(round(pm25 / 80, 2), 0.2, 1)
        if (power && modes[mode] === 'sleep') fan = 0.2
        pm25 += (outdoor - pm25) * 0.002 * dt - (power ? pm25 * 0.03 * fan * dt : 0)
        pm25 = clamp(pm25, 1, 500)
        humidity = clamp(humidity + (rng() - 0.5) * 0.2 * dt, 20, 80)
      }
    },
    telemetry () {
      const pm = Math.round(pm25)
      const rh = Math.round(humidity)
      const speed = round(fan, 2)
      const payload = JSON.stringify({
        id: messageId++,
        method: 'properties_changed',
        params: [
          { siid: 2, piid: 1, value: power },
          { siid: 2, piid: 4, value: speed },
          { siid: 2, piid: 5, value: mode },
          { siid: 3, piid: 4, value: pm },
          { siid: 3, piid: 7, value: rh },
        ],
      })
      return { payload, readings: { power, fanSpeed: round(speed * 100, 6), mode: modes[mode], pm25: pm, humidity: rh } }
    },
    command (payload) {
      const cmd = jsonCommand(payload)
      if (!cmd || cmd.method !== 'set_properties' || !Array.isArray(cmd.params)) return null
      const result = cmd.params.map((p: { siid: number, piid: number, value: unknown }) => {
        let code = 0
        if (p.siid === 2 && p.piid === 1 && typeof p.value === 'boolean') power = p.value
        else if (p.siid === 2 && p.piid === 4 && typeof p.value === 'number' && p.value >= 0 && p.value <= 1) { fan = p.value; mode = 2 }
        else if (p.siid === 2 && p.piid === 5 && typeof p.value === 'number' && modes[p.value]) mode = p.value
        else code = -4005
        return { siid: p.siid, piid: p.piid, code }
      })
      return JSON.stringify({ id: cmd.id, result })
    },
  }
}

export const breezewell: Brand = {
  kind: breezewellAp3.model.name,
  brand: breezewellAp3.brand,
  model: breezewellAp3.model,
  start: async (opts) => await runAppliance(opts, breezewellAppliance(opts.rng ?? Math.random)),
}
