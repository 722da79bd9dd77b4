import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { builtInDialects } from '@trellis/hub/adapters'
import { compileDeclaration } from '../support/dialects.js'
import { commandProblem } from '../../hub/src/commands/validate.js'
import { AutomationDeclaration, devicesOf } from '../../hub/src/automations/rule.js'

const guide = readFileSync(new URL('../../docs/owners.md', import.meta.url), 'utf8')
const rules = [...guide.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]).filter((text) => text.includes('"trigger"'))
const models = new Map(builtInDialects.map((d) => [`<${d.model.name}>`, compileDeclaration(d.model)]))

describe('the owner\'s guide', () => {
  it('has worked examples', () => {
    expect(rules.length).toBeGreaterThanOrEqual(4)
  })

  it.each(rules.map((text) => [JSON.parse(text).name as string, text]))('declares a valid rule: %s', (_name, text) => {
    const rule = AutomationDeclaration.parse(JSON.parse(text))
    // Each placeholder names a built-in brand, whose model has what the rule reads and accepts what it sends.
    for (const id of devicesOf(rule)) if (id.startsWith('<')) expect(models.has(id), id).toBe(true)
    const t = rule.trigger
    if (t.type === 'reading' && models.has(t.deviceId)) expect(models.get(t.deviceId)!.capabilities.has(t.capability as never), `${t.deviceId} ${t.capability}`).toBe(true)
    for (const c of rule.conditions) if (c.type === 'state' && models.has(c.deviceId)) expect(models.get(c.deviceId)!.capabilities.has(c.capability as never)).toBe(true)
    for (const a of rule.actions) if (models.has(a.deviceId)) expect(commandProblem(models.get(a.deviceId)!, a.command)).toBeNull()
  })
})
