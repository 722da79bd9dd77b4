import type { CapabilityDeclaration, ReadingValue } from '@trellis/device-sdk'
import { clamp, round, type Rng } from './random.js'

/**
 * A simulated appliance that speaks canonical Trellis (the device SDK).
 * `tick` advances its physics by `dtMs` and returns what it reports now;
 * `commands` change its state the way the real thing would.
 */
export interface CanonicalBehaviour {
  tick (dtMs: number): Record<string, ReadingValue>
  commands: Record<string, (value: any) => Record<string, ReadingValue>>
}

export interface CanonicalKind {
  kind: string
  /** How the demo maker declares this model. */
  model: { name: string, capabilities: CapabilityDeclaration[] }
  create (rng: Rng): CanonicalBehaviour
}

/** A room thermostat: the room drifts toward the setpoint while heating, toward outside when off. */
const thermostat: CanonicalKind = {
  kind: 'thermostat',
  model: {
    name: 'Trellis Thermostat T1',
    capabilities: ['temperature', 'targetTemperature', 'power', 'humidity', { name: 'mode', enum: ['comfort', 'eco', 'away'] }, 'rssi'],
  },
  create (rng) {
    let temperature = 17 + rng() * 4
    let target = 21
    let power = true
    let mode = 'comfort'
    const outside = 6 + rng() * 6
    let humidity = 40 + rng() * 15
    return {
      tick (dtMs) {
        const goal = power ? target : outside
        // First-order approach with a ~20 minute time constant, plus sensor noise.
        temperature += (goal - temperature) * (1 - Math.exp(-dtMs / 1_200_000)) + (rng() - 0.5) * 0.05
        humidity = clamp(humidity + (rng() - 0.5) * 0.4, 20, 80)
        return { temperature: round(temperature, 2), targetTemperature: target, power, humidity: round(humidity), mode, rssi: Math.round(-55 - rng() * 20) }
      },
      commands: {
        targetTemperature: (v: number) => { target = v; return { targetTemperature: v } },
        power: (v: boolean) => { power = v; return { power: v } },
        mode: (v: string) => {
          mode = v
          target = v === 'eco' ? 18 : v === 'away' ? 15 : 21
          return { mode: v, targetTemperature: target }
        },
      },
    }
  },
}

/** A metering smart plug: a duty-cycled load; off draws 0 W; energy accumulates. */
const plug: CanonicalKind = {
  kind: 'plug',
  model: { name: 'Trellis Smart Plug P1', capabilities: ['power', 'powerDraw', 'energy', 'voltage', 'current'] },
  create (rng) {
    let power = true
    let energy = rng() * 50
    const load = 60 + rng() * 1500
    let phase = rng() * Math.PI * 2
    return {
      tick (dtMs) {
        phase += dtMs / 60_000
        const voltage = 229 + (rng() - 0.5) * 4
        const draw = power ? Math.max(0, load * (0.55 + 0.45 * Math.sin(phase)) + (rng() - 0.5) * 5) : 0
        energy += (draw * dtMs) / 3_600_000_000
        return { power, powerDraw: round(draw), energy: round(energy, 4), voltage: round(voltage), current: round(draw / voltage, 3) }
      },
      commands: {
        power: (v: boolean) => { power = v; return { power: v, ...(v ? {} : { powerDraw: 0, current: 0 }) } },
      },
    }
  },
}

/** An indoor air sensor: CO₂ rises while the room is occupied and falls when aired. */
const airSensor: CanonicalKind = {
  kind: 'air-sensor',
  model: { name: 'Trellis Air Sensor A1', capabilities: ['temperature', 'humidity', 'co2', 'pm25', 'battery'] },
  create (rng) {
    let co2 = 450 + rng() * 300
    let pm25 = 5 + rng() * 10
    let battery = 60 + rng() * 40
    const temperature = 19 + rng() * 4
    return {
      tick (dtMs) {
        const occupied = rng() < 0.6
        co2 = clamp(co2 + (occupied ? 4 : -6) * (dtMs / 10_000) + (rng() - 0.5) * 5, 400, 3000)
        pm25 = clamp(pm25 + (rng() - 0.5), 1, 80)
        battery = Math.max(0, battery - dtMs / 36_000_000)
        return { temperature: round(temperature + (rng() - 0.5) * 0.2, 2), humidity: round(45 + (rng() - 0.5) * 2), co2: Math.round(co2), pm25: round(pm25), battery: Math.round(battery) }
      },
      commands: {},
    }
  },
}

/** A door contact sensor: mostly shut, opened now and then. */
const doorSensor: CanonicalKind = {
  kind: 'door-sensor',
  model: { name: 'Trellis Door Sensor D1', capabilities: ['contact', 'battery'] },
  create (rng) {
    let contact = true
    let battery = 70 + rng() * 30
    return {
      tick (dtMs) {
        if (contact ? rng() < 0.05 : rng() < 0.5) contact = !contact
        battery = Math.max(0, battery - dtMs / 72_000_000)
        return { contact, battery: Math.round(battery) }
      },
      commands: {},
    }
  },
}

/** A dimmable white light. */
const light: CanonicalKind = {
  kind: 'light',
  model: { name: 'Trellis Light L1', capabilities: ['power', 'brightness', 'colorTemperature', 'illuminance'] },
  create (rng) {
    let power = rng() < 0.5
    let brightness = 80
    let colorTemperature = 2700
    return {
      tick () {
        return { power, brightness, colorTemperature, illuminance: Math.round((power ? brightness * 4 : 0) + rng() * 20) }
      },
      commands: {
        power: (v: boolean) => { power = v; return { power: v } },
        brightness: (v: number) => { brightness = v; power = v > 0; return { brightness: v, power } },
        colorTemperature: (v: number) => { colorTemperature = v; return { colorTemperature: v } },
      },
    }
  },
}

export const canonicalKinds: readonly CanonicalKind[] = [thermostat, plug, airSensor, doorSensor, light]
