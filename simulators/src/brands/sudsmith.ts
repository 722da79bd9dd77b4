import { formatClockDuration } from '@trellis/device-sdk'
import { sudsmithW8 } from '@trellis/hub/adapters'
import { jsonCommand, runAppliance, type Appliance, type Brand } from './appliance.js'
import type { Rng } from '../random.js'

/** A cotton programme, in seconds per phase. */
const programme = [
  { phase: 'FILL', canonical: 'fill', seconds: 180 },
  { phase: 'MAIN_WASH', canonical: 'wash', seconds: 2400 },
  { phase: 'RINSE', canonical: 'rinse', seconds: 900 },
  { phase: 'SPIN', canonical: 'spin', seconds: 600 },
] as const

/**
 * A Sudsmith W8 washer: when on, it runs through fill, wash, rinse and spin,
 * counting down the remaining time, door locked; then it finishes, unlocks
 * and after a while starts the next load.
 */
export function sudsmithAppliance (rng: Rng): Appliance {
  let power = true
  // Seconds into the programme; past its end the load is finished.
  let elapsed = rng() * 3000
  const total = programme.reduce((sum, p) => sum + p.seconds, 0)
  let idleFor = 0
  let paused = false
  const fw = '3.1.4'
  const current = () => {
    let t = elapsed
    for (const p of programme) {
      if (t < p.seconds) return p
      t -= p.seconds
    }
    return null
  }
  return {
    step (seconds) {
      if (!power || paused) return
      if (elapsed < total) {
        elapsed = Math.min(total, elapsed + seconds)
        if (elapsed >= total) idleFor = 0
      } else {
        idleFor += seconds
        if (idleFor > 600 + rng() * 1200) elapsed = 0
      }
    },
    telemetry (now) {
      const p = power ? current() : null
      const remaining = p ? Math.round(total - elapsed) : 0
      const phase = !power ? 'STANDBY' : paused && p ? 'PAUSED' : p ? p.phase : 'FINISHED'
      const rssi = -50 - Math.round(rng() * 25)
      const payload = JSON.stringify({
        time: now,
        device: { fw, wifi: { rssi } },
        status: { power: power ? 'ON' : 'OFF', phase, remaining: formatClockDuration(remaining), door_lock: p ? 1 : 0 },
      })
      return {
        payload,
        readings: { power, cyclePhase: !power ? 'idle' : paused && p ? 'paused' : p ? p.canonical : 'done', remainingTime: remaining, lock: p !== null, firmwareVersion: fw, rssi },
      }
    },
    command (payload) {
      const cmd = jsonCommand(payload)
      if (!cmd || typeof cmd.cid !== 'string') return null
      const op = cmd.cmd?.op
      if (op === 'START') {
        // Resumes a paused load; otherwise starts a new one.
        if (!paused || elapsed >= total) elapsed = 0
        power = true
        paused = false
        return JSON.stringify({ cid: cmd.cid, code: 0 })
      }
      if (op === 'PAUSE') {
        if (!power || elapsed >= total) return JSON.stringify({ cid: cmd.cid, code: 3, text: 'nothing is running' })
        paused = true
        return JSON.stringify({ cid: cmd.cid, code: 0 })
      }
      const wanted = cmd.cmd?.power
      if (wanted !== 'ON' && wanted !== 'OFF') return JSON.stringify({ cid: cmd.cid, code: 2, text: 'cmd.power must be ON or OFF, or cmd.op START or PAUSE' })
      if (wanted === 'ON' && !power) elapsed = 0
      power = wanted === 'ON'
      paused = false
      return JSON.stringify({ cid: cmd.cid, code: 0 })
    },
  }
}

export const sudsmith: Brand = {
  kind: sudsmithW8.model.name,
  brand: sudsmithW8.brand,
  model: sudsmithW8.model,
  // A programme lasts over an hour; a demo shows it in about two minutes.
  start: async (opts) => await runAppliance(opts, sudsmithAppliance(opts.rng ?? Math.random), 30),
}
