import { hearthwayT100 } from '@trellis/hub/adapters'
import { clamp, jsonCommand, round, runAppliance, type Appliance, type Brand } from './appliance.js'
import type { Rng } from '../random.js'

const hvacModes = { OFF: 'off', HEAT: 'heat', COOL: 'cool', AUTO: 'auto' } as const
type Hvac = keyof typeof hvacModes

/** °F as the hub stores it: °C. */
const celsius = (f: number) => (f - 32) * 5 / 9

/**
 * A Hearthway T-100 thermostat: the room drifts toward the outdoor
 * temperature, and toward the setpoint while the HVAC runs.
 */
export function hearthwayAppliance (rng: Rng): Appliance {
  let ambient = 62 + rng() * 6
  let setpoint = 68
  let hvac: Hvac = 'HEAT'
  let battery = 80 + Math.round(rng() * 20)
  const outdoor = 45
  return {
    step (seconds) {
      for (let left = seconds; left > 0; left -= 1) {
        const dt = Math.min(1, left)
        const heating = (hvac === 'HEAT' || hvac === 'AUTO') && ambient < setpoint - 0.5
        const cooling = (hvac === 'COOL' || hvac === 'AUTO') && ambient > setpoint + 0.5
        ambient += (outdoor - ambient) * 0.0005 * dt + (heating ? 0.03 : 0) * dt - (cooling ? 0.03 : 0) * dt + (rng() - 0.5) * 0.01
        if (rng() < 0.0002 * dt) battery = Math.max(1, battery - 1)
      }
    },
    telemetry (now) {
      const ambientF = round(ambient, 1)
      const rh = 35 + Math.round(rng() * 10)
      const payload = JSON.stringify({ ts: new Date(Math.floor(now / 1000) * 1000).toISOString(), ambient_f: ambientF, setpoint_f: setpoint, rh, hvac, batt: battery })
      return { payload, readings: { temperature: celsius(ambientF), targetTemperature: celsius(setpoint), humidity: rh, mode: hvacModes[hvac], battery } }
    },
    command (payload) {
      const cmd = jsonCommand(payload)
      if (!cmd || typeof cmd.id !== 'string') return null
      if (cmd.setpoint_f !== undefined) {
        if (typeof cmd.setpoint_f !== 'number' || cmd.setpoint_f < 40 || cmd.setpoint_f > 90) return JSON.stringify({ id: cmd.id, ok: false, reason: 'setpoint must be 40..90 °F' })
        setpoint = clamp(round(cmd.setpoint_f, 1), 40, 90)
      }
      if (cmd.hvac !== undefined) {
        if (!(cmd.hvac in hvacModes)) return JSON.stringify({ id: cmd.id, ok: false, reason: `unknown hvac mode ${String(cmd.hvac)}` })
        hvac = cmd.hvac as Hvac
      }
      return JSON.stringify({ id: cmd.id, ok: true })
    },
  }
}

export const hearthway: Brand = {
  kind: hearthwayT100.model.name,
  brand: hearthwayT100.brand,
  model: hearthwayT100.model,
  start: async (opts) => await runAppliance(opts, hearthwayAppliance(opts.rng ?? Math.random)),
}
