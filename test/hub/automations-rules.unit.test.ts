import { describe, expect, it } from 'vitest'
import { RuleIndex, type ArmedRule } from '../../hub/src/automations/rule-index.js'
import { checkCondition, readingEdge } from '../../hub/src/automations/evaluate.js'
import { AutomationDeclaration, Condition, Trigger, type Automation } from '../../hub/src/automations/rule.js'

const rule = (id: string, trigger: Record<string, unknown>): ArmedRule => ({
  rule: { ...AutomationDeclaration.parse({ name: id, trigger, actions: [{ deviceId: 'dev-x', command: { set: { power: true } } }] }), id, ownerId: 'ow-1', createdAt: '' } as Automation,
  last: undefined,
  holding: null,
})

describe('rule index', () => {
  it('finds rules by device and capability, and has nothing for an unwatched device', () => {
    const index = new RuleIndex()
    const a = rule('a', { type: 'reading', deviceId: 'dev-1', capability: 'temperature', op: 'above', value: 25 })
    const b = rule('b', { type: 'reading', deviceId: 'dev-1', capability: 'temperature', op: 'changes' })
    const c = rule('c', { type: 'reading', deviceId: 'dev-1', capability: 'power', op: 'equals', value: true })
    const p = rule('p', { type: 'presence', deviceId: 'dev-2', online: false })
    const t = rule('t', { type: 'time', cron: '0 7 * * *' })
    for (const r of [a, b, c, p, t]) index.add(r)
    expect(index.size).toBe(4)
    expect(index.watched('dev-1')?.get('temperature')).toEqual([a, b])
    expect(index.watched('dev-1')?.get('power')).toEqual([c])
    expect(index.watched('dev-1')?.get('humidity')).toBeUndefined()
    expect(index.watched('dev-2')).toBeUndefined()
    expect(index.onPresence('dev-2')).toEqual([p])
    expect(index.onPresence('dev-1')).toBeUndefined()
  })

  it('forgets a device once its last rule is removed', () => {
    const index = new RuleIndex()
    const a = rule('a', { type: 'reading', deviceId: 'dev-1', capability: 'temperature', op: 'changes' })
    const c = rule('c', { type: 'reading', deviceId: 'dev-1', capability: 'power', op: 'changes' })
    index.add(a)
    index.add(c)
    index.remove(a)
    expect(index.watched('dev-1')?.has('temperature')).toBe(false)
    index.remove(c)
    index.remove(c)
    expect(index.watched('dev-1')).toBeUndefined()
    expect(index.size).toBe(0)
  })
})

describe('trigger edges', () => {
  const above = Trigger.parse({ type: 'reading', deviceId: 'd', capability: 'temperature', op: 'above', value: 25 }) as Extract<Trigger, { type: 'reading' }>
  const held = Trigger.parse({ type: 'reading', deviceId: 'd', capability: 'temperature', op: 'above', value: 25, forSeconds: 600 }) as Extract<Trigger, { type: 'reading' }>
  const changes = Trigger.parse({ type: 'reading', deviceId: 'd', capability: 'power', op: 'changes' }) as Extract<Trigger, { type: 'reading' }>

  it('fires when a threshold is crossed, not while the value stays beyond it', () => {
    expect(readingEdge(above, 24, 26)).toBe('fire')
    expect(readingEdge(above, 26, 27)).toBe('none')
    expect(readingEdge(above, 27, 20)).toBe('release')
    expect(readingEdge(above, undefined, 26)).toBe('fire')
  })

  it('holds before firing when the comparison must last', () => {
    expect(readingEdge(held, 24, 26)).toBe('hold')
    expect(readingEdge(held, 26, 24)).toBe('release')
  })

  it('fires on a change only when the previous value is known and differs', () => {
    expect(readingEdge(changes, undefined, true)).toBe('none')
    expect(readingEdge(changes, true, true)).toBe('none')
    expect(readingEdge(changes, true, false)).toBe('fire')
  })

  it('refuses a threshold without a number, and a hold on "changes"', () => {
    expect(Trigger.safeParse({ type: 'reading', deviceId: 'd', capability: 'temperature', op: 'above', value: 'hot' }).success).toBe(false)
    expect(Trigger.safeParse({ type: 'reading', deviceId: 'd', capability: 'power', op: 'changes', forSeconds: 5 }).success).toBe(false)
  })
})

describe('conditions', () => {
  const at = new Date('2024-03-22T23:30:00Z') // a Friday; Saturday 00:30 in Berlin (UTC+1)
  const none = () => undefined

  it('reads a time window across midnight in the condition\'s time zone', () => {
    const night = Condition.parse({ type: 'time', after: '22:00', before: '06:00', timezone: 'Europe/Berlin' })
    expect(checkCondition(night, 0, at, none)).toMatchObject({ met: true })
    const evening = Condition.parse({ type: 'time', after: '18:00', before: '23:00', timezone: 'Europe/Berlin' })
    expect(checkCondition(evening, 0, at, none)).toMatchObject({ met: false })
  })

  it('reads the day of the week in the condition\'s time zone', () => {
    expect(checkCondition(Condition.parse({ type: 'time', days: ['sat', 'sun'], timezone: 'Europe/Berlin' }), 0, at, none).met).toBe(true)
    expect(checkCondition(Condition.parse({ type: 'time', days: ['sat', 'sun'], timezone: 'UTC' }), 0, at, none).met).toBe(false)
  })

  it('compares another device\'s current state, and an unknown state meets nothing', () => {
    const c = Condition.parse({ type: 'state', deviceId: 'dev-9', capability: 'power', op: 'equals', value: true })
    expect(checkCondition(c, 0, at, () => true).met).toBe(true)
    expect(checkCondition(c, 0, at, () => false).met).toBe(false)
    expect(checkCondition(c, 0, at, none)).toMatchObject({ met: false, detail: expect.stringContaining('unknown') })
  })
})
