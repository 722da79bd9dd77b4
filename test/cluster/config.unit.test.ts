import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '@trellis/hub'

describe('REDIS_URL (cluster mode)', () => {
  const shared = { DATABASE_URL: 'postgresql://trellis@db:5432/trellis', INFLUX_URL: 'http://influxdb:8086' }

  it('is taken with a shared PostgreSQL and InfluxDB', () => {
    expect(loadConfig({ REDIS_URL: 'redis://redis:6379', ...shared }).REDIS_URL).toBe('redis://redis:6379')
  })

  it('is refused without DATABASE_URL or INFLUX_URL, which every node must share', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://redis:6379', INFLUX_URL: shared.INFLUX_URL })).toThrow(ConfigError)
    expect(() => loadConfig({ REDIS_URL: 'redis://redis:6379', DATABASE_URL: shared.DATABASE_URL })).toThrow(/needs DATABASE_URL and INFLUX_URL/)
  })

  it('is refused with BROKER_URL, and when it is not a redis:// URL', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://redis:6379', ...shared, BROKER_URL: 'mqtt://broker:1883', SERVICE_SECRET: 'x'.repeat(32) })).toThrow(/unset BROKER_URL/)
    expect(() => loadConfig({ REDIS_URL: 'http://redis:6379', ...shared })).toThrow(/redis:\/\/ URL/)
  })
})
