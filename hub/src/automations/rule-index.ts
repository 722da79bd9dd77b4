import type { ReadingValue } from '@trellis/device-sdk'
import type { Automation } from './rule.js'

/** A rule as the index holds it, with what its trigger remembers between readings. */
export interface ArmedRule {
  readonly rule: Automation
  /** The trigger capability's value before the current reading; undefined when unknown. */
  last: ReadingValue | undefined
  /** A hold in progress (`forSeconds`): fires when it runs out. */
  holding: NodeJS.Timeout | null
}

/**
 * Rules by the device and capability (or the device's presence) that
 * triggers them. A reading of a capability no rule watches costs one failed
 * Map lookup per message, and nothing is allocated.
 */
export class RuleIndex {
  private readonly readings = new Map<string, Map<string, ArmedRule[]>>()
  private readonly presence = new Map<string, ArmedRule[]>()
  private count = 0

  get size (): number { return this.count }

  add (armed: ArmedRule): void {
    const t = armed.rule.trigger
    if (t.type === 'reading') {
      let caps = this.readings.get(t.deviceId)
      if (!caps) this.readings.set(t.deviceId, caps = new Map())
      const list = caps.get(t.capability)
      if (list) list.push(armed)
      else caps.set(t.capability, [armed])
    } else if (t.type === 'presence') {
      const list = this.presence.get(t.deviceId)
      if (list) list.push(armed)
      else this.presence.set(t.deviceId, [armed])
    } else return
    this.count++
  }

  remove (armed: ArmedRule): void {
    const t = armed.rule.trigger
    let list: ArmedRule[] | undefined
    if (t.type === 'reading') list = this.readings.get(t.deviceId)?.get(t.capability)
    else if (t.type === 'presence') list = this.presence.get(t.deviceId)
    const at = list?.indexOf(armed) ?? -1
    if (!list || at < 0) return
    list.splice(at, 1)
    this.count--
    if (list.length > 0) return
    if (t.type === 'reading') {
      const caps = this.readings.get(t.deviceId)!
      caps.delete(t.capability)
      if (caps.size === 0) this.readings.delete(t.deviceId)
    } else if (t.type === 'presence') this.presence.delete(t.deviceId)
  }

  /** The capabilities of a device that rules watch; undefined (the common case) when none. */
  watched (deviceId: string): ReadonlyMap<string, readonly ArmedRule[]> | undefined {
    return this.readings.get(deviceId)
  }

  onPresence (deviceId: string): readonly ArmedRule[] | undefined {
    return this.presence.get(deviceId)
  }
}
