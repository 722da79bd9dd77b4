import type { ModelCapability } from '@trellis/device-sdk'
import type { DeadLetters } from '../ingest/dead-letters.js'
import type { SqlClient } from '../registry/sql.js'
import type { Model } from '../registry/registry.js'
import type { StateStore } from '../state/state.js'
import { quoteIdentifier, quoteString, type TelemetryStore } from '../store/telemetry.js'
import { isHealthCapability } from './health.js'

export interface InsightOptions {
  /** Smallest cohort of devices a usage aggregate is computed over; below it the aggregate is withheld. Default 10. */
  minCohort?: number
}

/** A spread of per-device daily means: never one device's value when the cohort is large enough. */
export interface Distribution { devices: number, mean: number, p10: number, p50: number, p90: number }

export interface CapabilityInsight {
  capability: string
  kind: 'health' | 'usage'
  /** Devices that reported the capability that day. */
  devices: number
  /** Numbers: the spread of per-device daily means. Null when withheld or not a number. */
  distribution: Distribution | null
  /** Other kinds: readings per reporting device that day. */
  readingsPerDevice: number | null
  /** Why an aggregate is missing: a usage cohort below the minimum. */
  withheld: string | null
}

export interface ModelInsight {
  model: string
  day: string
  minCohort: number
  provisioned: number
  claimed: number
  /** Devices that reported anything that day. */
  activeDevices: number
  /** Share of provisioned devices online now (today only; null for past days). */
  onlineShare: number | null
  /** Devices per firmware version last reported that day. */
  firmwareVersions: Record<string, number>
  rejections: { count: number, perActiveDevice: number | null }
  commands: { total: number, failed: number, errorRate: number | null }
  capabilities: CapabilityInsight[]
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]

function distribution (values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length
  const round = (v: number) => Math.round(v * 1000) / 1000
  return { devices: sorted.length, mean: round(mean), p10: round(quantile(sorted, 0.1)), p50: round(quantile(sorted, 0.5)), p90: round(quantile(sorted, 0.9)) }
}

/**
 * What a maker learns of one model's fleet on one day: health in full, usage
 * only as spreads over at least `minCohort` devices, never a single home.
 */
export class FleetInsight {
  readonly minCohort: number

  constructor (private readonly deps: { sql: SqlClient, store: TelemetryStore, state: StateStore, deadLetters: DeadLetters }, opts: InsightOptions = {}) {
    this.minCohort = Math.max(2, opts.minCohort ?? 10)
  }

  /** `day`: midnight UTC of the day, epoch ms. */
  async forModel (model: Model, day: number, now = Date.now()): Promise<ModelInsight> {
    const from = day
    const to = day + 86_400_000
    const { sql, state, deadLetters } = this.deps
    const devices = await sql.query<{ id: string, claimed: boolean }>('SELECT id, owner_id IS NOT NULL AS claimed FROM devices WHERE model_id = $1', [model.id])
    const where = `"model" = ${quoteString(model.id)} AND time >= ${from}ms AND time < ${to}ms`
    const active = new Set<string>()
    const capabilities: CapabilityInsight[] = []
    let firmwareVersions: Record<string, number> = {}
    for (const cap of model.resolved) {
      const kind = isHealthCapability(cap.name) ? 'health' : 'usage'
      const entry = await this.capability(cap, kind, where)
      for (const d of entry.devices) active.add(d)
      capabilities.push(entry.insight)
      if (cap.name === 'firmwareVersion') firmwareVersions = await this.firmware(where)
    }
    const today = now >= from && now < to
    const online = today ? devices.filter((d) => state.get(d.id)?.online === true).length : 0
    const rejected = deadLetters.forModel(model.id, Number.MAX_SAFE_INTEGER, model.makerId).filter((r) => { const t = Date.parse(r.at); return t >= from && t < to }).length
    const [commands] = await sql.query<{ total: number, failed: number }>(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE c.status IN ('error', 'timeout'))::int AS failed
       FROM commands c JOIN devices d ON d.id = c.device_id WHERE d.model_id = $1 AND c.created_at >= $2 AND c.created_at < $3`,
      [model.id, new Date(from), new Date(to)]).catch(() => [{ total: 0, failed: 0 }])
    return {
      model: model.id,
      day: new Date(day).toISOString().slice(0, 10),
      minCohort: this.minCohort,
      provisioned: devices.length,
      claimed: devices.filter((d) => d.claimed).length,
      activeDevices: active.size,
      onlineShare: today && devices.length > 0 ? Math.round(online / devices.length * 1000) / 1000 : null,
      firmwareVersions,
      rejections: { count: rejected, perActiveDevice: active.size > 0 ? Math.round(rejected / active.size * 1000) / 1000 : null },
      commands: { total: commands.total, failed: commands.failed, errorRate: commands.total > 0 ? Math.round(commands.failed / commands.total * 1000) / 1000 : null },
      capabilities,
    }
  }

  private async capability (cap: ModelCapability, kind: 'health' | 'usage', where: string): Promise<{ devices: string[], insight: CapabilityInsight }> {
    const numeric = cap.kind === 'number'
    const rows = await this.deps.store.query<{ device: string, value: number | null }>(
      `SELECT ${numeric ? 'mean' : 'count'}("value") AS "value" FROM ${quoteIdentifier(cap.name)} WHERE ${where} GROUP BY "device"`)
    const perDevice = rows.filter((r) => typeof r.device === 'string' && typeof r.value === 'number')
    const devices = perDevice.map((r) => r.device)
    const insight: CapabilityInsight = { capability: cap.name, kind, devices: devices.length, distribution: null, readingsPerDevice: null, withheld: null }
    if (devices.length === 0) return { devices, insight }
    // A usage aggregate over fewer devices than the minimum would come too close to one home's readings.
    if (kind === 'usage' && devices.length < this.minCohort) {
      insight.withheld = `${devices.length} devices reported ${cap.name} that day; usage aggregates need at least ${this.minCohort}`
      return { devices, insight }
    }
    const values = perDevice.map((r) => r.value as number)
    if (numeric) insight.distribution = distribution(values)
    else insight.readingsPerDevice = Math.round(values.reduce((s, v) => s + v, 0) / values.length * 1000) / 1000
    return { devices, insight }
  }

  private async firmware (where: string): Promise<Record<string, number>> {
    const rows = await this.deps.store.query<{ device: string, value: string | null }>(`SELECT last("value") AS "value" FROM "firmwareVersion" WHERE ${where} GROUP BY "device"`)
    const out: Record<string, number> = {}
    for (const r of rows) if (typeof r.value === 'string') out[r.value] = (out[r.value] ?? 0) + 1
    return out
  }
}
