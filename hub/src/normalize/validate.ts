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
  for (const name in raw) {
    const value = raw[name]
    const cap = model.capabilities.get(name as CapabilityName)
    if (!cap) {
      problems.push(`model ${model.name} has no capability ${name.slice(0, 64)}`)
      continue
    }
    const problem = checkValue(cap, value, model.name)
    if (problem) problems.push(problem)
    else readings.push({ capability: cap.name, value: value as ReadingValue })
  }
  return { readings, problems }
}
