import type { SqlClient } from './sql.js'
import { iso, type StoredState } from './records.js'

/** Each device's latest state, saved so that a restart starts from it. */
export class SavedStates {
  constructor (private readonly db: SqlClient) {}

  async saveStates (states: StoredState[]): Promise<void> {
    if (states.length === 0) return
    await this.db.query(
      `INSERT INTO device_state (device_id, online, last_seen, state)
       SELECT d, o, l, s FROM unnest($1::text[], $2::boolean[], $3::timestamptz[], $4::jsonb[]) AS t (d, o, l, s)
       ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, state = excluded.state`,
      [states.map((s) => s.deviceId), states.map((s) => s.online), states.map((s) => s.lastSeen), states.map((s) => JSON.stringify(s.state))])
  }

  async loadStates (): Promise<StoredState[]> {
    const rows = await this.db.query<{ device_id: string, online: boolean, last_seen: Date | null, state: StoredState['state'] }>(
      'SELECT device_id, online, last_seen, state FROM device_state')
    return rows.map((r) => ({ deviceId: r.device_id, online: r.online, lastSeen: iso(r.last_seen), state: r.state }))
  }
}
