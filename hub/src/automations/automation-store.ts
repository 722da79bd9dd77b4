import type { ReadingValue } from '@trellis/device-sdk'
import type { SqlClient } from '../registry/sql.js'
import type { Automation, AutomationDeclaration } from './rule.js'
import { migrate } from '../registry/migrate.js'

/**
 * What became of one firing: `fired` (the commands' own statuses tell the
 * rest), or why nothing was sent: `conditions` not met, `cooldown`, `loop`
 * (the causal chain was cut), `ownership` (a device is no longer the owner's).
 */
export type RunOutcome = 'fired' | 'conditions' | 'cooldown' | 'loop' | 'ownership'

/** The event that fired the rule. */
export interface RunTrigger {
  type: string
  deviceId?: string
  capability?: string
  value?: ReadingValue | null
  online?: boolean
  /** The rules that fired before this one in its causal chain, oldest first. */
  chain?: string[]
}

export interface ConditionResult { index: number, type: string, met: boolean, detail: string }

/** One action's command: sent (its status follows from the command log) or refused with the reason. */
export interface RunCommand {
  deviceId: string
  delaySeconds: number
  /** `sent`, `scheduled` (waiting for its delay), or why it was not sent: offline, invalid, busy, failed. */
  outcome: string
  commandId: string | null
  /** The command's current status when one was sent, else the outcome. */
  status: string
  error: string | null
}

export interface AutomationRun {
  id: number
  firedAt: string
  outcome: RunOutcome
  reason: string | null
  trigger: RunTrigger
  conditions: ConditionResult[]
  commands: RunCommand[]
}

const schema = `
CREATE TABLE IF NOT EXISTS automations (
  id text PRIMARY KEY,
  owner_id text NOT NULL,
  rule jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS automations_owner ON automations (owner_id);
CREATE TABLE IF NOT EXISTS automation_runs (
  id bigserial PRIMARY KEY,
  automation_id text NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
  fired_at timestamptz NOT NULL,
  outcome text NOT NULL,
  reason text,
  trigger jsonb NOT NULL,
  conditions jsonb NOT NULL,
  commands jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS automation_runs_automation ON automation_runs (automation_id, id DESC);
`

interface AutomationRow { id: string, owner_id: string, rule: AutomationDeclaration, created_at: Date }

function toAutomation (r: AutomationRow): Automation {
  return { ...r.rule, id: r.id, ownerId: r.owner_id, createdAt: new Date(r.created_at).toISOString() }
}

const declarationOf = (a: Automation): AutomationDeclaration =>
  ({ name: a.name, trigger: a.trigger, conditions: a.conditions, actions: a.actions, cooldownSeconds: a.cooldownSeconds, enabled: a.enabled })

/**
 * Automations and their runs in the registry's SQL database, in tables of
 * their own. Runs look up their commands' statuses in the `commands` table,
 * so open the CommandLog first.
 */
export class AutomationStore {
  private constructor (private readonly db: SqlClient) {}

  static async open (db: SqlClient): Promise<AutomationStore> {
    await migrate(db, 'automations', [{ version: 1, name: 'automations and their runs', sql: schema }])
    return new AutomationStore(db)
  }

  async insert (a: Automation): Promise<void> {
    await this.db.query('INSERT INTO automations (id, owner_id, rule, created_at) VALUES ($1, $2, $3, $4)',
      [a.id, a.ownerId, JSON.stringify(declarationOf(a)), a.createdAt])
  }

  async update (a: Automation): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>('UPDATE automations SET rule = $3 WHERE id = $1 AND owner_id = $2 RETURNING id',
      [a.id, a.ownerId, JSON.stringify(declarationOf(a))])
    return rows.length > 0
  }

  async all (): Promise<Automation[]> {
    return (await this.db.query<AutomationRow>('SELECT * FROM automations ORDER BY created_at, id')).map(toAutomation)
  }

  async byOwner (ownerId: string): Promise<Automation[]> {
    return (await this.db.query<AutomationRow>('SELECT * FROM automations WHERE owner_id = $1 ORDER BY created_at, id', [ownerId])).map(toAutomation)
  }

  async countByOwner (ownerId: string): Promise<number> {
    const rows = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM automations WHERE owner_id = $1', [ownerId])
    return rows[0].n
  }

  async get (ownerId: string, id: string): Promise<Automation | null> {
    const rows = await this.db.query<AutomationRow>('SELECT * FROM automations WHERE id = $1 AND owner_id = $2', [id, ownerId])
    return rows[0] ? toAutomation(rows[0]) : null
  }

  async delete (ownerId: string, id: string): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>('DELETE FROM automations WHERE id = $1 AND owner_id = $2 RETURNING id', [id, ownerId])
    return rows.length > 0
  }

  /** Records a run and returns its id. */
  async recordRun (automationId: string, run: Omit<AutomationRun, 'id'>): Promise<number> {
    const rows = await this.db.query<{ id: string | number }>('INSERT INTO automation_runs (automation_id, fired_at, outcome, reason, trigger, conditions, commands) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
      [automationId, run.firedAt, run.outcome, run.reason, JSON.stringify(run.trigger), JSON.stringify(run.conditions), JSON.stringify(run.commands)])
    return Number(rows[0].id)
  }

  /** Replaces a run's commands: a delayed action was sent. */
  async updateRunCommands (runId: number, commands: RunCommand[]): Promise<void> {
    await this.db.query('UPDATE automation_runs SET commands = $2 WHERE id = $1', [runId, JSON.stringify(commands)])
  }

  /** Keeps an automation's newest `keep` runs and deletes the rest. */
  async pruneRuns (automationId: string, keep: number): Promise<void> {
    await this.db.query(
      `DELETE FROM automation_runs WHERE automation_id = $1 AND id NOT IN (
         SELECT id FROM automation_runs WHERE automation_id = $1 ORDER BY id DESC LIMIT $2)`, [automationId, keep])
  }

  /** An automation's runs, newest first, each command with its current status from the command log. */
  async runs (automationId: string, limit: number): Promise<AutomationRun[]> {
    const rows = await this.db.query<{ id: string | number, fired_at: Date, outcome: RunOutcome, reason: string | null, trigger: RunTrigger, conditions: ConditionResult[], commands: RunCommand[] }>(
      'SELECT * FROM automation_runs WHERE automation_id = $1 ORDER BY id DESC LIMIT $2', [automationId, limit])
    const ids = rows.flatMap((r) => r.commands.map((c) => c.commandId).filter((id): id is string => id !== null))
    const statuses = new Map<string, { status: string, error: string | null }>()
    if (ids.length > 0) {
      for (const c of await this.db.query<{ id: string, status: string, error: string | null }>('SELECT id, status, error FROM commands WHERE id = ANY($1)', [ids])) {
        statuses.set(c.id, { status: c.status, error: c.error })
      }
    }
    return rows.map((r) => ({
      id: Number(r.id),
      firedAt: new Date(r.fired_at).toISOString(),
      outcome: r.outcome,
      reason: r.reason,
      trigger: r.trigger,
      conditions: r.conditions,
      commands: r.commands.map((c) => {
        const known = c.commandId ? statuses.get(c.commandId) : undefined
        return { ...c, status: known?.status ?? c.status, error: c.error ?? known?.error ?? null }
      }),
    }))
  }
}
