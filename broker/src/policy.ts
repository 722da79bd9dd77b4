import { deviceInbound, deviceOutbound, parseAllDevicesFilter, parseTopic } from '@trellis/device-sdk/topics'

/**
 * Who is on the other end of a connection. Devices act only on their own
 * topics; the hub's service identity (when the hub runs apart from the broker)
 * reads every device's outbound channels and writes commands.
 */
export type Principal =
  | { readonly kind: 'device', readonly deviceId: string }
  | { readonly kind: 'service', readonly name: string }

/** Longest topic accepted anywhere, in characters. */
export const MAX_TOPIC_LENGTH = 256
/** Deepest topic accepted anywhere, in levels. */
export const MAX_TOPIC_LEVELS = 8

/**
 * A device's own topic tree, when its model's mapping declares one (firmware
 * that publishes `tele/<id>/SENSOR` and takes `cmnd/<id>/POWER`). Every topic
 * in it holds the device's id, so a device still reaches only its own.
 */
export interface OwnTopics {
  publishes (deviceId: string, topic: string): boolean
  receives (deviceId: string, topic: string): boolean
  subscribes (deviceId: string, filter: string): boolean
}

/** The topic tree of a device's model, or null for the canonical tree only. */
export type OwnTopicsOf = (deviceId: string) => OwnTopics | null

export type Denial = 'topic-malformed' | 'not-own-topic' | 'wrong-direction' | 'retain-not-allowed' | 'wildcard' | 'system-topic'

function malformed (topic: string): boolean {
  if (topic.length === 0 || topic.length > MAX_TOPIC_LENGTH || topic.includes('\u0000')) return true
  let levels = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47 /* / */ && ++levels > MAX_TOPIC_LEVELS) return true
  return false
}

/** Why `principal` may not publish `topic` (with `retain`), or null when it may. */
export function publishDenial (principal: Principal, topic: string, retain = false, ownTopics?: OwnTopicsOf): Denial | null {
  if (malformed(topic)) return 'topic-malformed'
  if (topic.startsWith('$')) return 'system-topic'
  const parsed = parseTopic(topic)
  if (!parsed) {
    if (principal.kind !== 'device') return 'wrong-direction'
    // Looked up only off the canonical tree: canonical topics cost what they did.
    if (!ownTopics?.(principal.deviceId)?.publishes(principal.deviceId, topic)) return 'not-own-topic'
    return retain ? 'retain-not-allowed' : null
  }
  if (principal.kind === 'service') {
    if (parsed.channel !== 'commands') return 'wrong-direction'
    return retain ? 'retain-not-allowed' : null
  }
  if (parsed.deviceId !== principal.deviceId) return 'not-own-topic'
  if (!deviceOutbound.has(parsed.channel)) return 'wrong-direction'
  if (retain && parsed.channel !== 'presence') return 'retain-not-allowed'
  return null
}

/** Why `principal` may not subscribe to `filter`, or null when it may. */
export function subscribeDenial (principal: Principal, filter: string, ownTopics?: OwnTopicsOf): Denial | null {
  if (malformed(filter)) return 'topic-malformed'
  if (filter.startsWith('$')) return 'system-topic'
  if (principal.kind === 'service') {
    // The hub reads every device's outbound channels through one filter each.
    const channel = parseAllDevicesFilter(filter)
    return channel !== null && deviceOutbound.has(channel) ? null : 'wrong-direction'
  }
  if (!filter.startsWith('devices/') && ownTopics?.(principal.deviceId)?.subscribes(principal.deviceId, filter)) return null
  if (filter.includes('#') || filter.includes('+')) return 'wildcard'
  const parsed = parseTopic(filter)
  if (!parsed || parsed.deviceId !== principal.deviceId) return 'not-own-topic'
  return deviceInbound.has(parsed.channel) ? null : 'wrong-direction'
}

export function canPublish (principal: Principal, topic: string, retain = false, ownTopics?: OwnTopicsOf): boolean {
  return publishDenial(principal, topic, retain, ownTopics) === null
}

export function canSubscribe (principal: Principal, filter: string, ownTopics?: OwnTopicsOf): boolean {
  return subscribeDenial(principal, filter, ownTopics) === null
}

/**
 * Second line of defence at delivery: a device only ever receives its own
 * commands, whatever it managed to subscribe to.
 */
export function canReceive (principal: Principal, topic: string, ownTopics?: OwnTopicsOf): boolean {
  if (principal.kind === 'service') return !topic.startsWith('$')
  const parsed = parseTopic(topic)
  if (parsed === null) return ownTopics?.(principal.deviceId)?.receives(principal.deviceId, topic) === true
  return parsed.deviceId === principal.deviceId && deviceInbound.has(parsed.channel)
}
