import { describe, expect, it } from 'vitest'
import { seededRng } from '@trellis/simulators'
import { frostlineAppliance } from '../../simulators/src/brands/frostline.js'
import { breezewellAppliance } from '../../simulators/src/brands/breezewell.js'
import { hearthwayAppliance } from '../../simulators/src/brands/hearthway.js'
import { voltwiseAppliance } from '../../simulators/src/brands/voltwise.js'
import { sudsmithAppliance } from '../../simulators/src/brands/sudsmith.js'
import type { Appliance } from '../../simulators/src/brands/appliance.js'

/** Runs an appliance for `seconds` of its time, sampling its canonical readings every `every` seconds. */
function run (appliance: Appliance, seconds: number, every = 10): Array<Record<string, unknown>> {
  const samples: Array<Record<string, unknown>> = []
  const start = Date.parse('2026-11-18T12:00:00Z')
  for (let t = 0; t < seconds; t += every) {
    appliance.step(every)
    samples.push(appliance.telemetry(start + t * 1000).readings)
  }
  return samples
}

describe('brand simulators behave like the appliances they stand for', () => {
  it('a fridge cycles its compressor around the setpoint and its door opens now and then', () => {
    const fridge = frostlineAppliance(seededRng(1))
    const samples = run(fridge, 6 * 3600)
    const temps = samples.map((s) => s.temperature as number)
    // Hysteresis around 4 °C: it stays near the setpoint, with real swings.
    expect(Math.min(...temps.slice(100))).toBeGreaterThan(1.5)
    expect(Math.max(...temps.slice(100))).toBeLessThan(9)
    expect(Math.max(...temps.slice(100)) - Math.min(...temps.slice(100))).toBeGreaterThan(1.5)
    const payloads = Array.from({ length: 2000 }, () => { fridge.step(5); return JSON.parse(fridge.telemetry(Date.now()).payload) })
    expect(new Set(payloads.map((p) => p.data.comp))).toEqual(new Set([0, 1]))
    expect(payloads.some((p) => p.data.door === 'OPEN')).toBe(true)
    expect(payloads.filter((p) => p.data.door === 'OPEN').length).toBeLessThan(payloads.length / 2)
  })

  it('a fridge takes a setpoint in tenths of a degree and refuses one out of range, in its dialect', () => {
    const fridge = frostlineAppliance(seededRng(2))
    expect(fridge.command(Buffer.from('{"req":"a","cmd":{"setp_x10":30}}'))).toBe('{"req":"a","result":"OK"}')
    expect(fridge.telemetry(Date.now()).readings.targetTemperature).toBe(3)
    expect(JSON.parse(fridge.command(Buffer.from('{"req":"b","cmd":{"setp_x10":300}}'))!)).toMatchObject({ req: 'b', result: 'FAIL' })
    expect(fridge.command(Buffer.from('not json'))).toBeNull()
  })

  it('a purifier clears PM2.5 while its fan runs, and the air worsens when it is off', () => {
    const purifier = breezewellAppliance(seededRng(3))
    const start = run(purifier, 10)[0].pm25 as number
    const cleaned = run(purifier, 1800).at(-1)!.pm25 as number
    expect(cleaned).toBeLessThan(start)
    expect(cleaned).toBeLessThan(25)
    expect(purifier.command(Buffer.from('{"id":"c","method":"set_properties","params":[{"siid":2,"piid":1,"value":false}]}'))).toBe('{"id":"c","result":[{"siid":2,"piid":1,"code":0}]}')
    const dirty = run(purifier, 3600).at(-1)!
    expect(dirty.power).toBe(false)
    expect(dirty.pm25 as number).toBeGreaterThan(cleaned + 20)
  })

  it('a thermostat drifts toward its setpoint while it heats, and away when off', () => {
    const thermostat = hearthwayAppliance(seededRng(4))
    thermostat.command(Buffer.from('{"id":"c","setpoint_f":72}'))
    const warmed = run(thermostat, 3 * 3600).at(-1)!
    expect(warmed.targetTemperature as number).toBeCloseTo(22.22, 2)
    expect(Math.abs((warmed.temperature as number) - 22.22)).toBeLessThan(1)
    expect(thermostat.command(Buffer.from('{"id":"d","hvac":"OFF"}'))).toBe('{"id":"d","ok":true}')
    const cooled = run(thermostat, 3 * 3600).at(-1)!
    expect(cooled.mode).toBe('off')
    expect(cooled.temperature as number).toBeLessThan((warmed.temperature as number) - 2)
    expect(JSON.parse(thermostat.command(Buffer.from('{"id":"e","setpoint_f":120}'))!)).toEqual({ id: 'e', ok: false, reason: 'setpoint must be 40..90 °F' })
  })

  it('a plug draws power in a duty cycle, counts energy, and draws nothing with its relay off', () => {
    const plug = voltwiseAppliance(seededRng(5))
    const samples = run(plug, 3600, 5)
    const draws = samples.map((s) => s.powerDraw as number)
    const high = draws.filter((w) => w > 100).length / draws.length
    expect(high).toBeGreaterThan(0.3)
    expect(high).toBeLessThan(0.8)
    expect(draws.some((w) => w < 5)).toBe(true)
    expect(samples.at(-1)!.energy as number).toBeGreaterThan(samples[0].energy as number)
    for (const s of samples) expect(s.current as number).toBeCloseTo((s.powerDraw as number) / (s.voltage as number), 2)
    expect(plug.command(Buffer.from('ID=x;RELAY=OFF'))).toBe('ID=x;RESULT=OK;RELAY=OFF')
    const off = run(plug, 600, 5)
    expect(off.every((s) => s.powerDraw === 0 && s.power === false)).toBe(true)
    expect(plug.command(Buffer.from('ID=y;RELAY=MAYBE'))).toBe('ID=y;RESULT=ERR;ERR=RELAY must be ON or OFF')
  })

  it('a washer goes through its programme phases, counting down with the door locked, then finishes', () => {
    const washer = sudsmithAppliance(seededRng(6))
    washer.command(Buffer.from('{"cid":"off","cmd":{"power":"OFF"}}'))
    washer.command(Buffer.from('{"cid":"on","cmd":{"power":"ON"}}'))
    const samples = run(washer, 4200, 30)
    const phases = samples.map((s) => s.cyclePhase).filter((p, i, all) => p !== all[i - 1])
    expect(phases.slice(0, 5)).toEqual(['fill', 'wash', 'rinse', 'spin', 'done'])
    const running = samples.filter((s) => s.cyclePhase !== 'done' && s.cyclePhase !== 'idle')
    expect(running.every((s) => s.lock === true)).toBe(true)
    const remaining = running.map((s) => s.remainingTime as number)
    expect(remaining.every((r, i) => i === 0 || r < remaining[i - 1])).toBe(true)
    const payload = JSON.parse(washer.telemetry(Date.now()).payload)
    expect(payload.status.remaining).toMatch(/^\d\d:\d\d:\d\d$/)
  })

  it('a washer pauses and resumes its programme on the start and pause actions', () => {
    const washer = sudsmithAppliance(seededRng(7))
    expect(washer.command(Buffer.from('{"cid":"s","cmd":{"op":"START","prog":"cotton"}}'))).toBe('{"cid":"s","code":0}')
    const washing = run(washer, 600, 30).at(-1)!
    expect(washing.cyclePhase).toBe('wash')
    expect(washer.command(Buffer.from('{"cid":"p","cmd":{"op":"PAUSE"}}'))).toBe('{"cid":"p","code":0}')
    const paused = run(washer, 900, 30)
    expect(paused.every((s) => s.cyclePhase === 'paused' && s.lock === true && s.remainingTime === paused[0].remainingTime)).toBe(true)
    washer.command(Buffer.from('{"cid":"r","cmd":{"op":"START"}}'))
    const resumed = run(washer, 60, 30).at(-1)!
    expect(resumed.cyclePhase).toBe('wash')
    expect(resumed.remainingTime as number).toBeLessThan(paused[0].remainingTime as number)
  })
})
