import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'
import { normalizeTelemetry } from '../../hub/src/normalize/index.js'
import { compileDeclaration } from '../support/dialects.js'

// Issue #17, finding 3: every unknown key lengthened the stored reason (2,338 keys in 16 KB gave 301,600 characters).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapUsed = () => { gc(); gc(); return process.memoryUsage().heapUsed }

/** 16 KB of canonical telemetry whose readings are all unknown capabilities, as the hostile device sent. */
function unknownKeys (seed: number): Buffer {
  const readings: Record<string, number> = {}
  for (let i = 0; Buffer.byteLength(JSON.stringify({ readings })) < 16_000; i++) readings[String.fromCharCode(97 + seed) + i.toString(36)] = 1
  return Buffer.from(JSON.stringify({ readings }))
}

/** What ingest does with a payload: normalize it, and dead-letter it with its problems joined. */
const models = Array.from({ length: 150 }, (_, i) => compileDeclaration({ name: `m${i}`, capabilities: ['temperature'] }))
function ingest (letters: DeadLetters, modelIndex: number, payload: Buffer): void {
  const model = models[modelIndex]
  const result = normalizeTelemetry(payload, model, Date.now())
  const reason = result.ok ? result.value.problems.join('; ') : result.reason
  letters.record({ deviceId: 'dev-hostile', modelId: model.id, makerId: 'mk-hostile', topic: 'devices/dev-hostile/telemetry', reason }, payload)
}

describe('rejected payloads', () => {
  it('give a reason of bounded length however many unknown keys a payload has', () => {
    const payload = unknownKeys(0)
    const keys = Object.keys(JSON.parse(payload.toString()).readings).length
    expect(keys).toBeGreaterThan(1900)
    const letters = new DeadLetters()
    ingest(letters, 0, payload)
    const [letter] = letters.forModel('md_m0')
    expect(letter.reason.length).toBeLessThan(1100)
    expect(letter.reason).toContain('has no capability a0, a1, a2')
    expect(letter.reason).toContain(`and ${keys - 5} more`)
    expect(letter.payload.length).toBeLessThanOrEqual(512)
  })

  it('keep a maker\'s rejections within a byte budget across any number of models', () => {
    const letters = new DeadLetters()
    const payloads = Array.from({ length: 10 }, (_, i) => unknownKeys(i))
    const before = heapUsed()
    // 400 messages over 150 models of one maker; before the bound this kept about 20 MB of reasons.
    for (let i = 0; i < 400; i++) ingest(letters, i % 150, payloads[i % payloads.length])
    const grown = heapUsed() - before
    expect(grown).toBeLessThan(8 * 1024 * 1024)
    expect(letters.bytesOf('mk-hostile')).toBeLessThanOrEqual(new DeadLetters().limits.perMakerBytes)
    // The newest are kept, so the maker still sees what its devices send now.
    expect(letters.forModel(`md_m${399 % 150}`)[0].reason).toContain('has no capability j0')
  }, 30_000)

  it('keep the whole hub\'s rejections within a byte budget across any number of makers', () => {
    const letters = new DeadLetters({ perMakerBytes: 64 * 1024, totalBytes: 256 * 1024 })
    for (let i = 0; i < 100; i++) {
      letters.record({ deviceId: `dev-${i}`, modelId: `md-${i}`, makerId: `mk-${i}`, topic: 't', reason: 'x'.repeat(5000) }, Buffer.alloc(600, 'y'))
    }
    expect(letters.bytes).toBeLessThanOrEqual(256 * 1024)
    expect(letters.forModel('md-99')).toHaveLength(1)
    expect(letters.forModel('md-0')).toHaveLength(0)
  })
})
