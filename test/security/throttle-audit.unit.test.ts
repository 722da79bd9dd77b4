import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { ApiError, AuditLog, RequestThrottle, type AuditEntry, type Registry } from '@trellis/hub'

/** The one registry method the audit log uses, recording batches. */
function fakeRegistry (opts: { fail?: boolean } = {}) {
  const batches: AuditEntry[][] = []
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const registry = {
    async appendAudit (entries: AuditEntry[]) {
      await gate
      if (opts.fail) throw new Error('registry down')
      batches.push(entries)
    },
  } as unknown as Registry
  return { registry, batches, release }
}

describe('audit log', () => {
  it('writes entries in batches', async () => {
    const fake = fakeRegistry()
    fake.release()
    const audit = new AuditLog(fake.registry, pino({ level: 'silent' }), { flushIntervalMs: 10_000 })
    for (let i = 0; i < 5; i++) audit.record({ actor: 'anonymous', action: 'login-failed', detail: `try ${i}` })
    await audit.flush()
    expect(fake.batches).toHaveLength(1)
    expect(fake.batches[0].map((e) => e.detail)).toEqual(['try 0', 'try 1', 'try 2', 'try 3', 'try 4'])
  })

  it('holds a bounded number of entries while the registry is slow, counting the rest', async () => {
    const fake = fakeRegistry()
    const audit = new AuditLog(fake.registry, pino({ level: 'silent' }), { flushIntervalMs: 10_000, maxPending: 100 })
    for (let i = 0; i < 1000; i++) audit.record({ actor: 'device:dev-x', action: 'acl-violation', detail: 'x'.repeat(5000) })
    expect(audit.dropped).toBe(900)
    const flushed = audit.flush()
    fake.release()
    await flushed
    expect(fake.batches[0]).toHaveLength(100)
    expect(fake.batches[0][0].detail).toHaveLength(1000)
  })

  it('keeps serving when the registry refuses a batch', async () => {
    const fake = fakeRegistry({ fail: true })
    fake.release()
    const audit = new AuditLog(fake.registry, pino({ level: 'silent' }))
    audit.record({ actor: 'admin', action: 'token-revoked', detail: 'tok' })
    await expect(audit.flush()).resolves.toBeUndefined()
  })
})

describe('request throttle', () => {
  it('refuses with 429 and Retry-After once any key has spent its budget', () => {
    const throttle = new RequestThrottle({ failedLogin: { perSecond: 0.5, burst: 2 } })
    const keys = ['10.0.0.1', 'email:a@example.com']
    throttle.check('failedLogin', keys)
    throttle.spend('failedLogin', keys)
    throttle.spend('failedLogin', keys)
    let thrown: unknown
    try { throttle.check('failedLogin', ['10.0.0.2', 'email:a@example.com']) } catch (err) { thrown = err }
    expect(thrown).toBeInstanceOf(ApiError)
    expect(thrown).toMatchObject({ status: 429, code: 'RATE_LIMITED', headers: { 'retry-after': '2' } })
    expect(() => throttle.check('failedLogin', ['10.0.0.2', 'email:b@example.com'])).not.toThrow()
  })
})
