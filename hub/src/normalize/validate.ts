import { checkValue, type CapabilityName, type ReadingValue } from '@trellis/device-sdk'
import type { CompiledModel } from './model.js'
import type { Reading } from './result.js'

export type { Reading } from './result.js'

export interface ValidatedReadings {
  readings: Reading[]
  /** One message per refused reading, naming the capability and the model. */
  problems: string[]
}

/**
 * Keeps the readings that the model has and whose values are valid; reports
 * the others. A message with some good readings keeps the good ones.
 */
export function validateReadings (raw: Record<string, unknown>, model: CompiledModel): ValidatedReadings {
  const readings: Reading[] = []
  const problems: string[] = []
  const unknown: string[] = []
  let unknownCount = 0
  for (const name in raw) {
    const value = raw[name]
    const cap = model.capabilities.get(name as CapabilityName)
    if (!cap) {
      // One problem for all unknown keys, naming a few: a payload of thousands of them must not make a reason as long.
      if (unknownCount++ < unknownNamed) unknown.push(name.slice(0, 64))
      continue
    }
    const problem = checkValue(cap, value, model.name)
    if (problem) problems.push(problem)
    else readings.push({ capability: cap.name, value: value as ReadingValue })
  }
  if (unknownCount > 0) {
    problems.push(`model ${model.name} has no capability ${unknown.join(', ')}${unknownCount > unknownNamed ? ` … and ${unknownCount - unknownNamed} more` : ''}`)
  }
  return { readings, problems }
}

/** How many unknown capabilities a problem names before it counts the rest. */
const unknownNamed = 5
