import { describe, expect, it } from 'vitest'
import { canPublish, canReceive, canSubscribe, KeyedBuckets, publishDenial, subscribeDenial, MAX_TOPIC_LENGTH, type Principal } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'

const dev1: Principal = { kind: 'device', deviceId: 'dev1' }
const hub: Principal = { kind: 'service', name: 'hub' }

describe('device publish policy', () => {
  it('lets a device publish on its own outbound channels only', () => {
    for (const t of [topics.telemetry('dev1'), topics.events('dev1'), topics.acks('dev1'), topics.presence('dev1')]) expect(canPublish(dev1, t)).toBe(true)
    expect(publishDenial(dev1, topics.commands('dev1'))).toBe('wrong-direction')
    expect(publishDenial(dev1, topics.telemetry('dev2'))).toBe('not-own-topic')
  })

  it('never lets dev1 act as dev10', () => {
    expect(publishDenial(dev1, topics.telemetry('dev10'))).toBe('not-own-topic')
    expect(subscribeDenial(dev1, topics.commands('dev10'))).toBe('not-own-topic')
    expect(canReceive(dev1, topics.commands('dev10'))).toBe(false)
  })

  it('allows retain on presence only', () => {
    expect(canPublish(dev1, topics.presence('dev1'), true)).toBe(true)
    expect(publishDenial(dev1, topics.telemetry('dev1'), true)).toBe('retain-not-allowed')
  })

  it('forbids $SYS, null bytes, over-long and over-deep topics', () => {
    expect(publishDenial(dev1, '$SYS/broker/uptime')).toBe('system-topic')
    expect(publishDenial(dev1, 'devices/dev1/telemetry\u0000')).toBe('topic-malformed')
    expect(publishDenial(dev1, `devices/dev1/${'x'.repeat(MAX_TOPIC_LENGTH)}`)).toBe('topic-malformed')
    expect(publishDenial(dev1, Array(101).fill('a').join('/'))).toBe('topic-malformed')
    expect(publishDenial(dev1, '')).toBe('topic-malformed')
  })
})

describe('device subscribe policy', () => {
  it('lets a device subscribe to its own commands and nothing else', () => {
    expect(canSubscribe(dev1, topics.commands('dev1'))).toBe(true)
    expect(subscribeDenial(dev1, topics.telemetry('dev1'))).toBe('wrong-direction')
    expect(subscribeDenial(dev1, topics.commands('dev2'))).toBe('not-own-topic')
  })

  it('refuses wildcards, $SYS and shared subscriptions', () => {
    for (const f of ['#', '+/+/commands', 'devices/+/telemetry', 'devices/dev1/#', 'devices/dev1/+']) expect(subscribeDenial(dev1, f), f).toBe('wildcard')
    expect(subscribeDenial(dev1, '$SYS/#')).toBe('system-topic')
    expect(subscribeDenial(dev1, '$share/g/devices/dev1/commands')).toBe('system-topic')
    expect(subscribeDenial(dev1, 'devices/dev1/commands\u0000')).toBe('topic-malformed')
  })
})

describe('service policy', () => {
  it('reads every device outbound channel and writes commands only', () => {
    expect(canSubscribe(hub, 'devices/+/telemetry')).toBe(true)
    expect(subscribeDenial(hub, '#')).toBe('wrong-direction')
    expect(subscribeDenial(hub, '$SYS/#')).toBe('system-topic')
    expect(canPublish(hub, topics.commands('dev1'))).toBe(true)
    expect(publishDenial(hub, topics.telemetry('dev1'))).toBe('wrong-direction')
    expect(publishDenial(hub, topics.commands('dev1'), true)).toBe('retain-not-allowed')
  })
})

describe('delivery re-check', () => {
  it('delivers a device only its own commands, whatever it subscribed to', () => {
    expect(canReceive(dev1, topics.commands('dev1'))).toBe(true)
    expect(canReceive(dev1, topics.telemetry('dev1'))).toBe(false)
    expect(canReceive(dev1, topics.commands('dev2'))).toBe(false)
    expect(canReceive(dev1, '$SYS/x/heartbeat')).toBe(false)
    expect(canReceive(hub, '$SYS/x/heartbeat')).toBe(false)
  })
})

describe('token buckets', () => {
  it('spends a burst, then refills at the rate', () => {
    let now = 0
    const buckets = new KeyedBuckets({ perSecond: 2, burst: 3 }, 100, () => now)
    expect([1, 2, 3, 4].map(() => buckets.take('a'))).toEqual([true, true, true, false])
    expect(buckets.take('b')).toBe(true)
    now = 500
    expect(buckets.take('a')).toBe(true)
    expect(buckets.take('a')).toBe(false)
    now = 100_000
    expect(buckets.has('a', 3)).toBe(true)
    expect(buckets.has('a', 4)).toBe(false)
  })

  it('remembers a bounded number of keys', () => {
    const buckets = new KeyedBuckets({ perSecond: 1, burst: 1 }, 50)
    for (let i = 0; i < 10_000; i++) buckets.take(`key-${i}`)
    expect(buckets.size).toBe(50)
  })
})
