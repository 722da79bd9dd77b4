import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '@trellis/hub'

describe('DATABASE_URL', () => {
  it('selects an existing PostgreSQL when it is a postgresql:// URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://trellis:secret@db.internal:5432/trellis' }).DATABASE_URL).toBe('postgresql://trellis:secret@db.internal:5432/trellis')
    expect(loadConfig({ DATABASE_URL: 'postgres://trellis@%2Fvar%2Frun%2Fpostgresql/trellis' }).DATABASE_URL).toMatch(/^postgres:/)
  })

  it('leaves the managed PostgreSQL to the hub when unset or empty', () => {
    expect(loadConfig({}).DATABASE_URL).toBeUndefined()
    expect(loadConfig({ DATABASE_URL: '' }).DATABASE_URL).toBeUndefined()
  })

  it('refuses anything else, saying what it must be', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@localhost/trellis' })).toThrow(ConfigError)
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root@localhost/trellis' })).toThrow(/DATABASE_URL must be a postgresql:\/\/ URL/)
  })
})
