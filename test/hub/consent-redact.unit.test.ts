import { describe, expect, it } from 'vitest'
import { redactPayload, withheldPayload } from '../../hub/src/consent/redact.js'

describe("a claimed device's refused payload, as its maker sees it", () => {
  it('keeps the shape of JSON and replaces every value by its type', () => {
    expect(redactPayload(JSON.stringify({ readings: { temperature: 87.125, power: true, mode: 'away', tags: [1, 'x', null] } })))
      .toBe('{"readings":{"temperature":"<number>","power":"<boolean>","mode":"<string>","tags":["<number>","<string>","<null>"]}}')
  })

  it('withholds what is not whole JSON: text, line protocol, a cut preview, a bare value', () => {
    for (const p of ['t=21.5;h=40', 'temperature,device=d value="hot" 1', '{"readings":{"temperature":87.1', '87.125', 'base64:AAEC']) {
      expect(redactPayload(p)).toBe(withheldPayload)
    }
  })
})
