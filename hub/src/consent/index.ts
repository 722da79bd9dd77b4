import type { Logger } from 'pino'
import type { DeadLetters } from '../ingest/dead-letters.js'
import type { SqlClient } from '../registry/sql.js'
import type { StateStore } from '../state/state.js'
import type { TelemetryStore } from '../store/telemetry.js'
import { AccessLog, type AccessLogOptions } from './access-log.js'
import { GrantStore } from './grant-store.js'
import { FleetInsight, type InsightOptions } from './insight.js'
import { ConsentPolicy } from './policy.js'

export { healthCapabilities, isHealthCapability } from './health.js'
export type { Grant, App, GranteeKind, Resolution } from './grant-store.js'
export type { AccessEntry, AccessRecord } from './access-log.js'
export type { ModelInsight } from './insight.js'

export interface ConsentOptions {
  /** Batching and retention of the owners' access log; defaults in AccessLogOptions (kept 90 days). */
  accessLog?: AccessLogOptions
  /** Fleet insight's smallest cohort for usage aggregates; default 10 (see InsightOptions). */
  insight?: InsightOptions
  /** Live grants an owner may hold. Default 100. */
  maxGrantsPerOwner?: number
  /** Apps an owner may register. Default 20. */
  maxAppsPerOwner?: number
  /** Longest a grant may run, in days. Default 366. */
  maxGrantDays?: number
  /** How long a grantee's grants are cached before they are read again (a change through another hub is seen within it). Default 5000 ms. */
  grantCacheMs?: number
}

/** What owners' consent is made of: grants and apps, the policy that reads them, the access log and fleet insight. */
export interface Consent {
  readonly grants: GrantStore
  readonly policy: ConsentPolicy
  readonly accessLog: AccessLog
  readonly insight: FleetInsight
  readonly limits: { maxGrantsPerOwner: number, maxAppsPerOwner: number, maxGrantDays: number }
  /** Writes the pending access records and stops pruning. */
  close (): Promise<void>
}

/** Builds consent on its own tables in the registry's database. */
export async function buildConsent (deps: { sql: SqlClient, store: TelemetryStore, state: StateStore, deadLetters: DeadLetters, log: Logger }, opts: ConsentOptions = {}): Promise<Consent> {
  const grants = await GrantStore.open(deps.sql, { cacheMs: opts.grantCacheMs })
  const accessLog = await AccessLog.open(deps.sql, deps.log.child({ component: 'access-log' }), opts.accessLog)
  return {
    grants,
    policy: new ConsentPolicy(grants),
    accessLog,
    insight: new FleetInsight(deps, opts.insight),
    limits: { maxGrantsPerOwner: opts.maxGrantsPerOwner ?? 100, maxAppsPerOwner: opts.maxAppsPerOwner ?? 20, maxGrantDays: opts.maxGrantDays ?? 366 },
    close: async () => { await accessLog.close() },
  }
}
