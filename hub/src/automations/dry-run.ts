import type { ReadingValue } from '@trellis/device-sdk'
import type { TelemetryStore } from '../store/telemetry.js'
import { PRESENCE_MEASUREMENT } from '../presence/presence.js'
import type { ConditionResult } from './automation-store.js'
import { checkCondition, holds, readingEdge } from './evaluate.js'
import type { Action, AutomationDeclaration } from './rule.js'

export interface DryRunLimits {
  /** Days of history replayed at most. Default 30. */
  maxDays: number
  /** Points read per series at most (the trigger's and each state condition's). Default 20000. */
  maxPoints: number
  /** Firings answered at most. Default 500. */
  maxFirings: number
}

export const defaultDryRunLimits: DryRunLimits = { maxDays: 30, maxPoints: 20_000, maxFirings: 500 }

export interface DryRunFiring {
  at: string
  value: ReadingValue | null
  conditions: ConditionResult[]
  commands: Array<{ at: string, deviceId: string, command: Action['command'] }>
}

export interface DryRunResult {
  from: string
  to: string
  pointsReplayed: number
  /** True when a series had more points than `maxPoints`, or there were more firings than `maxFirings`: the answer covers the start of the window. */
  truncated: boolean
  /** Trigger events refused by the cooldown. */
  cooldownSkips: number
  /** Trigger events whose conditions were not met. */
  conditionsUnmet: number
  firings: DryRunFiring[]
}

/** A trigger type that history cannot replay. */
export class DryRunRefused extends Error {}

interface Point { t: number, value: ReadingValue | null }

/**
 * Replays a candidate rule over stored history, `days` back from `now`: the
 * trigger's series in time order, with state conditions read as of each
 * event from their own series, and time and sun conditions at the event's
 * time. Chains are not replayed (nothing is sent). Reading and presence
 * triggers only: time and sun triggers fire whatever history holds.
 */
export async function dryRun (store: TelemetryStore, rule: AutomationDeclaration, days: number, limits: DryRunLimits = defaultDryRunLimits, now = Date.now()): Promise<DryRunResult> {
  const t = rule.trigger
  if (t.type !== 'reading' && t.type !== 'presence') throw new DryRunRefused(`a ${t.type} trigger fires by the clock, not by history; replay works for reading and presence triggers`)
  const span = Math.min(days, limits.maxDays)
  const from = new Date(now - span * 86_400_000)
  const to = new Date(now)
  const series = async (deviceId: string, measurement: string) => {
    const points = await store.history({ deviceId, capability: measurement, kind: 'number', from, to, limit: limits.maxPoints + 1 })
    return points.map((p): Point => ({ t: Date.parse(p.ts), value: p.value }))
  }
  const trigger = await series(t.deviceId, t.type === 'reading' ? t.capability : PRESENCE_MEASUREMENT)
  let truncated = trigger.length > limits.maxPoints
  if (truncated) trigger.length = limits.maxPoints
  const conditionSeries = new Map<string, Point[]>()
  for (const c of rule.conditions) {
    if (c.type !== 'state') continue
    const key = `${c.deviceId}\u0000${c.capability}`
    if (conditionSeries.has(key)) continue
    const points = await series(c.deviceId, c.capability)
    if (points.length > limits.maxPoints) truncated = true
    conditionSeries.set(key, points.slice(0, limits.maxPoints))
  }
  const valueAt = (deviceId: string, capability: string, at: number): ReadingValue | undefined => {
    const points = conditionSeries.get(`${deviceId}\u0000${capability}`) ?? []
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (points[mid].t <= at) lo = mid + 1
      else hi = mid
    }
    return lo > 0 ? points[lo - 1].value ?? undefined : undefined
  }

  const result: DryRunResult = { from: from.toISOString(), to: to.toISOString(), pointsReplayed: trigger.length, truncated, cooldownSkips: 0, conditionsUnmet: 0, firings: [] }
  let lastFired = -Infinity
  const fire = (at: number, value: ReadingValue | null) => {
    if (at - lastFired < rule.cooldownSeconds * 1000) {
      result.cooldownSkips++
      return
    }
    const date = new Date(at)
    const conditions = rule.conditions.map((c, i) => checkCondition(c, i, date, (d, cap) => valueAt(d, cap, at)))
    if (conditions.some((c) => !c.met)) {
      result.conditionsUnmet++
      return
    }
    lastFired = at
    if (result.firings.length >= limits.maxFirings) {
      result.truncated = true
      return
    }
    result.firings.push({
      at: date.toISOString(),
      value,
      conditions,
      commands: rule.actions.map((a) => ({ at: new Date(at + a.delaySeconds * 1000).toISOString(), deviceId: a.deviceId, command: a.command })),
    })
  }

  let previous: ReadingValue | undefined
  let holdSince: number | null = null
  for (const p of trigger) {
    if (p.value === null) continue
    if (t.type === 'presence') {
      const online = p.value === true
      if (previous !== undefined && previous !== online && (t.online === undefined || t.online === online)) fire(p.t, online)
      previous = online
      continue
    }
    if (holdSince !== null && p.t >= holdSince + t.forSeconds * 1000) {
      fire(holdSince + t.forSeconds * 1000, previous ?? null)
      holdSince = null
    }
    const edge = readingEdge(t, previous, p.value)
    if (edge === 'fire') fire(p.t, p.value)
    else if (edge === 'hold' && holdSince === null) holdSince = p.t
    else if (edge === 'release') holdSince = null
    previous = p.value
  }
  if (t.type === 'reading' && holdSince !== null && holdSince + t.forSeconds * 1000 <= now && holds(t.op as 'above', t.value, previous)) fire(holdSince + t.forSeconds * 1000, previous ?? null)
  return result
}
