import { describe, expect, it } from 'vitest'
import { toLine } from '@trellis/hub'
import { hashPassword, newClaimCode, normalizeClaimCode, verifyPassword, newId } from '../../hub/src/registry/secrets.js'
import { DeadLetters } from '../../hub/src/ingest/dead-letters.js'

describe('line protocol', () => {
  const base = { measurement: 'temperature', device: 'dev-a', model: 'md-b', maker: 'mk-c', ts: 1_700_000_000_123 }

  it('writes numbers as floats so 21 and 21.5 share a field type', () => {
    expect(toLine({ ...base, value: 21 })).toBe('temperature,device=dev-a,maker=mk-c,model=md-b value=21.0 1700000000123')
    expect(toLine({ ...base, value: 21.5 })).toBe('temperature,device=dev-a,maker=mk-c,model=md-b value=21.5 1700000000123')
  })

  it('writes booleans and escapes strings and tags', () => {
    expect(toLine({ ...base, measurement: 'power', value: false })).toBe('power,device=dev-a,maker=mk-c,model=md-b value=false 1700000000123')
    expect(toLine({ ...base, measurement: 'firmwareVersion', value: 'v"2\\x' })).toBe('firmwareVersion,device=dev-a,maker=mk-c,model=md-b value="v\\"2\\\\x" 1700000000123')
    expect(toLine({ ...base, model: 'a b,c=d', value: 1 })).toBe('temperature,device=dev-a,maker=mk-c,model=a\\ b\\,c\\=d value=1.0 1700000000123')
  })
})

describe('secrets', () => {
  it('verifies a password against its scrypt hash and nothing else', async () => {
    const hash = await hashPassword('correct horse battery')
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/)
    expect(await verifyPassword('correct horse battery', hash)).toBe(true)
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false)
  })

  it('makes claim codes that survive case, dashes and look-alike letters', () => {
    const code = newClaimCode()
    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/)
    expect(normalizeClaimCode(code.toLowerCase().replace(/-/g, ' '))).toBe(normalizeClaimCode(code))
    expect(normalizeClaimCode('O1LI')).toBe('0111')
  })

  it('makes ids that are valid device ids and distinct', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId('dev')))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(id).toMatch(/^dev-[a-z2-7]{12}$/)
  })
})

describe('dead letters', () => {
  it('keeps the newest within a maker\'s byte budget, newest first', () => {
    const entry = (i: number) => ({ deviceId: 'dev-a', modelId: i % 2 ? 'md-odd' : 'md-evn', makerId: 'mk', topic: 't', reason: `r${i}` })
    const one = new DeadLetters()
    one.record(entry(0), Buffer.from('p0'))
    // Room for five letters of this size.
    const letters = new DeadLetters({ perMakerBytes: one.bytes * 5 })
    for (let i = 0; i < 10; i++) letters.record(entry(i), Buffer.from(`p${i}`))
    expect(letters.total).toBe(10)
    expect(letters.forModel('md-odd').map((l) => l.reason)).toEqual(['r9', 'r7', 'r5'])
    expect(letters.recent().map((l) => l.reason)).toEqual(['r9', 'r8', 'r7', 'r6', 'r5'])
    expect(letters.recent(1)[0].payload).toBe('p9')
    expect(letters.bytesOf('mk')).toBe(one.bytes * 5)
  })

  it('keeps binary payloads as base64', () => {
    const letters = new DeadLetters()
    const l = letters.record({ deviceId: 'd', modelId: null, makerId: null, topic: 't', reason: 'r' }, Buffer.from([0xff, 0xfe, 0x00]))
    expect(l.payload).toBe('base64://4A')
  })
})
