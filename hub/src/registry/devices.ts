import type { EventEmitter } from 'node:events'
import type { SqlClient } from './sql.js'
import { newClaimCode, newDeviceSecret, newId, normalizeClaimCode, sha256Hex } from './secrets.js'
import { lockMaker, QuotaExceeded, type MakerQuotas } from './quotas.js'
import { toDevice, type DeviceCredentials, type DeviceEntry, type DeviceRecord, type DeviceRow, type Model, type ProvisionedDevice } from './records.js'

/** Devices: provisioning within the maker's quotas, claim and release, credentials; emits `device-changed`, `credentials-changed` and `gateway-changed` (devices were provisioned under it) on the registry. */
export class Devices {
  constructor (private readonly db: SqlClient, private readonly events: EventEmitter, private readonly quotas: Readonly<MakerQuotas>) {}

  /**
   * Throws QuotaExceeded when `count` is over the batch cap or would take the
   * maker over its device quota. `gatewayId`: the gateway the devices are
   * children of (the caller checked it is the maker's); default none.
   * `timeZone`: the IANA zone their local times are read in (the caller
   * checked it); default none, for the model's.
   */
  async provisionDevices (model: Model, count: number, gatewayId: string | null = null, timeZone: string | null = null): Promise<ProvisionedDevice[]> {
    if (count > this.quotas.provisionBatch) throw new QuotaExceeded(`a provisioning request makes at most ${this.quotas.provisionBatch} devices; send several`)
    const devices: ProvisionedDevice[] = []
    const ids: string[] = []
    const secrets: string[] = []
    const claims: string[] = []
    for (let i = 0; i < count; i++) {
      const d = { id: newId('dev'), secret: newDeviceSecret(), claimCode: newClaimCode() }
      devices.push(d)
      ids.push(d.id)
      secrets.push(sha256Hex(d.secret))
      claims.push(sha256Hex(normalizeClaimCode(d.claimCode)))
    }
    await this.db.transaction(async (tx) => {
      await lockMaker(tx, model.makerId)
      const [{ held }] = await tx.query<{ held: number }>('SELECT count(*)::int AS held FROM devices WHERE maker_id = $1', [model.makerId])
      const limit = this.quotas.devicesPerMaker
      if (held + count > limit) throw new QuotaExceeded(`you have ${held} devices and the limit per maker is ${limit}; provision at most ${Math.max(0, limit - held)} more`)
      await tx.query(
        `INSERT INTO devices (id, model_id, maker_id, secret_hash, claim_hash, gateway_id, time_zone)
         SELECT id, $1, $2, secret_hash, claim_hash, $6, $7 FROM unnest($3::text[], $4::text[], $5::text[]) AS t (id, secret_hash, claim_hash)`,
        [model.id, model.makerId, ids, secrets, claims, gatewayId, timeZone])
    })
    if (gatewayId !== null) this.events.emit('gateway-changed', gatewayId)
    return devices
  }

  /** The ids of the devices provisioned under a gateway. */
  async childIds (gatewayId: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>('SELECT id FROM devices WHERE gateway_id = $1', [gatewayId])
    return rows.map((r) => r.id)
  }

  async getDevice (id: string): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id])
    return rows[0] ? toDevice(rows[0]) : null
  }

  async deviceCredentials (id: string): Promise<DeviceCredentials | null> {
    const rows = await this.db.query<{ secret_hash: string, disabled: boolean }>('SELECT secret_hash, disabled FROM devices WHERE id = $1', [id])
    return rows[0] ? { secretHash: rows[0].secret_hash, disabled: rows[0].disabled } : null
  }

  /** A page of the owner's or maker's devices by id, with their credentials: one query, so that listing loads no device on its own. */
  async listDevices (filter: { ownerId: string } | { makerId: string }, page: { limit: number, after?: string }): Promise<DeviceEntry[]> {
    const [column, value] = 'ownerId' in filter ? ['owner_id', filter.ownerId] : ['maker_id', filter.makerId]
    const rows = await this.db.query<DeviceRow>(
      `SELECT * FROM devices WHERE ${column} = $1 AND id > $2 ORDER BY id LIMIT $3`, [value, page.after ?? '', page.limit])
    return rows.map((r) => ({ record: toDevice(r), credentials: { secretHash: r.secret_hash, disabled: r.disabled } }))
  }

  /** Gives the device with this claim code to the owner; the code is spent. Null when no device has it. */
  async claimDevice (ownerId: string, claimCode: string): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>(
      `UPDATE devices SET owner_id = $1, claim_hash = NULL, claimed_at = now()
       WHERE claim_hash = $2 AND owner_id IS NULL RETURNING *`, [ownerId, sha256Hex(normalizeClaimCode(claimCode))])
    if (!rows[0]) return null
    this.events.emit('device-changed', rows[0].id)
    return toDevice(rows[0])
  }

  /** A new secret for the device; the old one stops working at once. Null when no such device. */
  async rotateDeviceSecret (deviceId: string): Promise<string | null> {
    const secret = newDeviceSecret()
    const rows = await this.db.query<{ id: string }>('UPDATE devices SET secret_hash = $2 WHERE id = $1 RETURNING id', [deviceId, sha256Hex(secret)])
    if (!rows[0]) return null
    this.events.emit('device-changed', deviceId)
    this.events.emit('credentials-changed', deviceId)
    return secret
  }

  async setDeviceDisabled (deviceId: string, disabled: boolean): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>('UPDATE devices SET disabled = $2 WHERE id = $1 RETURNING *', [deviceId, disabled])
    if (!rows[0]) return null
    this.events.emit('device-changed', deviceId)
    if (disabled) this.events.emit('credentials-changed', deviceId)
    return toDevice(rows[0])
  }

  /**
   * The IANA zone the device's local times are read in (the caller checked
   * it); null for its model's. Changed only while `ownerId` holds the device
   * (null: while no owner does, for a maker's change), in the same statement
   * so that a claim or release in between is not overtaken. Null when it
   * did not change.
   */
  async setDeviceTimeZone (deviceId: string, timeZone: string | null, ownerId: string | null): Promise<DeviceRecord | null> {
    const rows = await this.db.query<DeviceRow>(
      'UPDATE devices SET time_zone = $2 WHERE id = $1 AND owner_id IS NOT DISTINCT FROM $3 RETURNING *', [deviceId, timeZone, ownerId])
    if (!rows[0]) return null
    this.events.emit('device-changed', deviceId)
    return toDevice(rows[0])
  }

  /** The owner gives the device up; it gets a fresh claim code (returned once). Null unless the owner has it. */
  async releaseDevice (ownerId: string, deviceId: string): Promise<{ claimCode: string } | null> {
    const claimCode = newClaimCode()
    const rows = await this.db.query<{ id: string }>(
      `UPDATE devices SET owner_id = NULL, claimed_at = NULL, released_at = now(), claim_hash = $3
       WHERE id = $1 AND owner_id = $2 RETURNING id`, [deviceId, ownerId, sha256Hex(normalizeClaimCode(claimCode))])
    if (!rows[0]) return null
    this.events.emit('device-changed', deviceId)
    return { claimCode }
  }
}
