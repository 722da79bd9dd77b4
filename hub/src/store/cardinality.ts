import type { Series } from './points.js'

export interface SeriesGuardOptions {
  /**
   * Distinct devices one maker may have reporting. Default 20000: well under
   * influxd's `max-values-per-tag` (100000 in the managed config), so one
   * maker cannot use up the `device` tag's values for everyone else.
   */
  maxDevicesPerMaker?: number
}

/**
 * Guards InfluxDB's tag cardinality per maker before a point reaches it:
 * once a maker's quota of device tag values is taken, points of further
 * devices of that maker are refused here, with a reason, and no one else's.
 */
export class SeriesGuard {
  readonly maxDevicesPerMaker: number
  private readonly devicesByMaker = new Map<string, Set<string>>()

  constructor (opts: SeriesGuardOptions = {}) {
    this.maxDevicesPerMaker = opts.maxDevicesPerMaker ?? 20_000
  }

  /** Null when the point may be written, else why not. */
  refusal (p: Pick<Series, 'device' | 'maker'>): string | null {
    let devices = this.devicesByMaker.get(p.maker)
    if (!devices) this.devicesByMaker.set(p.maker, devices = new Set())
    if (devices.has(p.device)) return null
    if (devices.size >= this.maxDevicesPerMaker) {
      return `maker ${p.maker} already has ${devices.size} devices reporting, its limit of tag values; device ${p.device} is not stored`
    }
    devices.add(p.device)
    return null
  }
}
