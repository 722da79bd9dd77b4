import { frostlineF2 } from '@trellis/hub/adapters'
import { clamp, jsonCommand, round, runAppliance, type Appliance, type Brand } from './appliance.js'
import type { Rng } from '../random.js'

/**
 * A Frostline F2 fridge: the compressor cycles around the setpoint with a
 * degree of hysteresis, and the door is opened now and then, warming it fast.
 */
export function frostlineAppliance (rng: Rng): Appliance {
  let temperature = 4 + rng() * 2
  let freezer = -18 + rng()
  let setpoint = 4
  let compressor = false
  let doorOpenFor = 0
  return {
    step (seconds) {
      for (let left = seconds; left > 0; left -= 1) {
        const dt = Math.min(1, left)
        if (doorOpenFor > 0) doorOpenFor = Math.max(0, doorOpenFor - dt)
        else if (rng() < 0.004 * dt) doorOpenFor = 5 + rng() * 25
        if (temperature > setpoint + 1) compressor = true
        else if (temperature < setpoint - 1) compressor = false
        temperature += (doorOpenFor > 0 ? 0.08 : 0.012) * dt - (compressor ? 0.035 * dt : 0)
        freezer = clamp(freezer + (compressor ? -0.01 : 0.004) * dt, -24, -12)
      }
    },
    telemetry (now) {
      const temp10 = Math.round(temperature * 10)
      const payload = JSON.stringify({
        t: Math.floor(now / 1000),
        data: { temps_x10: [temp10, Math.round(freezer * 10)], setp_x10: Math.round(setpoint * 10), door: doorOpenFor > 0 ? 'OPEN' : 'CLOSED', comp: compressor ? 1 : 0 },
        rssi: -60 - Math.round(rng() * 10),
      })
      const rssi = JSON.parse(payload).rssi as number
      return { payload, readings: { temperature: round(temp10 / 10, 1), targetTemperature: round(Math.round(setpoint * 10) / 10, 1), contact: doorOpenFor === 0, rssi } }
    },
    command (payload) {
      const cmd = jsonCommand(payload)
      if (!cmd || typeof cmd.req !== 'string') return null
      const target = cmd.cmd?.setp_x10
      if (typeof target !== 'number' || target < 10 || target > 80) {
        return JSON.stringify({ req: cmd.req, result: 'FAIL', msg: 'setpoint must be 10..80 tenths of a degree' })
      }
      setpoint = target / 10
      return JSON.stringify({ req: cmd.req, result: 'OK' })
    },
  }
}

export const frostline: Brand = {
  kind: frostlineF2.model.name,
  brand: frostlineF2.brand,
  model: frostlineF2.model,
  start: async (opts) => await runAppliance(opts, frostlineAppliance(opts.rng ?? Math.random)),
}
