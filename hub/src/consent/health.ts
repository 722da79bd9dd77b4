import type { CapabilityName } from '@trellis/device-sdk'

/**
 * Capabilities that tell how a device is doing, not how its home is lived in:
 * a maker sees them on every device of its models, claimed or not. Every other
 * capability is usage data, the owner's, shown to others only under a grant.
 * Battery is health: it says when a device needs care and nothing of the home.
 */
export const healthCapabilities: ReadonlySet<string> = new Set<CapabilityName>(['firmwareVersion', 'rssi', 'battery'])

export function isHealthCapability (name: string): boolean {
  return healthCapabilities.has(name)
}
