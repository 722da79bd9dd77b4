import { z } from 'zod'

/**
 * A device id: lower-case letters, digits and dashes, 3 to 64 characters.
 * No `+`, `#`, `/` or `$`, so an id can never act as a wildcard or reach into
 * another topic level.
 */
export const DeviceId = z.string().regex(/^[a-z0-9][a-z0-9-]{2,63}$/, 'a device id is 3-64 lower-case letters, digits or dashes')
export type DeviceId = z.infer<typeof DeviceId>

export function isDeviceId (s: string): boolean {
  return /^[a-z0-9][a-z0-9-]{2,63}$/.test(s)
}

export const channels = ['telemetry', 'events', 'presence', 'commands', 'acks'] as const
export type Channel = typeof channels[number]

/** The one place topic names are spelled. */
export const topics = {
  telemetry: (deviceId: string) => `devices/${deviceId}/telemetry`,
  events: (deviceId: string) => `devices/${deviceId}/events`,
  presence: (deviceId: string) => `devices/${deviceId}/presence`,
  commands: (deviceId: string) => `devices/${deviceId}/commands`,
  acks: (deviceId: string) => `devices/${deviceId}/acks`,
  /** Subscription filters for the hub's own service connection. */
  all: (channel: Channel) => `devices/+/${channel}`,
} as const

/** Channels a device publishes on (its own only), which the hub takes in. */
export const outboundChannels = ['telemetry', 'events', 'presence', 'acks'] as const satisfies readonly Channel[]
export type OutboundChannel = typeof outboundChannels[number]
/** Channels a device subscribes to (its own only). */
export const inboundChannels = ['commands'] as const satisfies readonly Channel[]
export type InboundChannel = typeof inboundChannels[number]

/** Channels a device may publish on (its own only). */
export const deviceOutbound: ReadonlySet<Channel> = new Set<Channel>(outboundChannels)
/** Channels a device may subscribe to (its own only). */
export const deviceInbound: ReadonlySet<Channel> = new Set<Channel>(inboundChannels)

const channelSuffix = Object.fromEntries(channels.map((c) => [c, `/${c}`])) as Record<Channel, string>

/**
 * True when `topic` ends in `channel`'s level, whoever's device it names: the
 * check for a topic the broker's policy already let through, on the ingest
 * hot path, where it must cost no allocation (`parseTopic` slices).
 */
export function hasChannel (topic: string, channel: Channel): boolean {
  return topic.endsWith(channelSuffix[channel])
}

/** The channel of a filter over every device (`devices/+/{channel}`, as `topics.all` spells it), or null for any other filter. */
export function parseAllDevicesFilter (filter: string): Channel | null {
  if (!filter.startsWith('devices/+/')) return null
  const channel = filter.slice(10)
  return (channels as readonly string[]).includes(channel) ? channel as Channel : null
}

export interface ParsedTopic { deviceId: string, channel: Channel }

/** Parses `devices/{id}/{channel}`; null for anything else. */
export function parseTopic (topic: string): ParsedTopic | null {
  if (!topic.startsWith('devices/')) return null
  const slash = topic.indexOf('/', 8)
  if (slash < 0) return null
  const deviceId = topic.slice(8, slash)
  const channel = topic.slice(slash + 1)
  if (!(channels as readonly string[]).includes(channel) || !isDeviceId(deviceId)) return null
  return { deviceId, channel: channel as Channel }
}
