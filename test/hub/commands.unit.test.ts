import { describe, expect, it } from 'vitest'
import { actionsOf, resolveCapabilities } from '@trellis/device-sdk'
import { CommandRequest, commandProblem, scheduleProblem, uptime } from '@trellis/hub'

const model = {
  id: 'md-1',
  name: 'washer-9',
  makerId: 'mk-1',
  capabilities: new Map(resolveCapabilities(['power', 'cyclePhase', 'energy', { name: 'mode', enum: ['cotton', 'wool'] }, { name: 'fanSpeed', min: 10, max: 90 }]).map((c) => [c.name, c])),
  mapping: null,
  heartbeatMs: null,
}

describe('command validation against a model', () => {
  it('accepts settable values in range and actions the model offers', () => {
    expect(commandProblem(model, { set: { power: true, mode: 'wool', fanSpeed: 50 } })).toBeNull()
    expect(commandProblem(model, { action: 'start', params: { programme: 'eco', delaySeconds: 60 } })).toBeNull()
    expect(commandProblem(model, { action: 'resetEnergy' })).toBeNull()
  })

  it('names every problem with the capability, the model and what is allowed', () => {
    expect(commandProblem(model, { set: { fanSpeed: 95, cyclePhase: 'spin', mode: 'silk' } })).toBe([
      'fanSpeed 95 is out of range 10..90 for model washer-9',
      'cyclePhase is read-only; settable on model washer-9: power, mode, fanSpeed',
      'mode "silk" is not one of cotton, wool for model washer-9',
    ].join('; '))
    expect(commandProblem(model, { action: 'toggle', params: { now: true } })).toBe('action toggle: params: Unrecognized key: "now"')
    expect(commandProblem(model, { action: 'descale' })).toBe('model washer-9 has no action descale; its actions: identify, reboot, toggle, start, pause, resume, cancel, resetEnergy')
  })

  it('offers actions by the capabilities a model has', () => {
    expect(actionsOf(['temperature'])).toEqual(['identify', 'reboot'])
    expect(actionsOf(['power', 'energy'])).toEqual(['identify', 'reboot', 'toggle', 'resetEnergy'])
  })

  it('takes either set or action in a request, not both', () => {
    expect(CommandRequest.safeParse({ set: { power: true } }).success).toBe(true)
    expect(CommandRequest.safeParse({ set: { power: true }, action: 'toggle' }).success).toBe(false)
    expect(CommandRequest.safeParse({}).success).toBe(false)
    expect(CommandRequest.safeParse({ set: {} }).success).toBe(false)
    expect(CommandRequest.safeParse({ set: { power: true }, params: {} }).success).toBe(false)
    expect(CommandRequest.safeParse({ set: { power: { on: true } } }).success).toBe(false)
  })
})

describe('schedule validation', () => {
  it('accepts five- and six-field cron expressions in IANA zones', () => {
    expect(scheduleProblem('0 23 * * *', 'Europe/Berlin')).toBeNull()
    expect(scheduleProblem('*/5 * * * * *', 'UTC')).toBeNull()
  })

  it('says what is wrong with a bad expression or zone', () => {
    expect(scheduleProblem('0 25 * * *', 'UTC')).toMatch(/^cron "0 25 \* \* \*" is not valid \(.*hour/)
    expect(scheduleProblem('every day', 'UTC')).toMatch(/^cron "every day" is not valid/)
    expect(scheduleProblem('0 23 * * *', 'Berlin')).toBe('time zone "Berlin" is not an IANA zone such as Europe/Berlin or UTC')
  })
})

describe('uptime', () => {
  const at = (ms: number) => new Date(ms).toISOString()

  it('counts the online stretches inside the period', () => {
    // online 0..30, offline 30..60, online 60..100 → 70 of 100
    expect(uptime(true, [{ ts: at(30), online: false }, { ts: at(60), online: true }], 0, 100)).toEqual({ onlineMs: 70, ratio: 0.7 })
    expect(uptime(false, [{ ts: at(25), online: true }], 0, 100)).toEqual({ onlineMs: 75, ratio: 0.75 })
  })

  it('counts repeated states once and handles an empty period', () => {
    expect(uptime(true, [{ ts: at(50), online: true }], 0, 100).ratio).toBe(1)
    expect(uptime(false, [], 0, 100).ratio).toBe(0)
    expect(uptime(true, [], 100, 100)).toEqual({ onlineMs: 0, ratio: 0 })
  })
})
