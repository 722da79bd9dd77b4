import { resolveCapabilities, type CapabilityDeclaration, type ModelCapability } from '@trellis/device-sdk'

// What the registry's aggregates hold, as rows and as the hub sees them.

/** `app`: a third-party API client an owner registered (hub/src/consent); it reads only under the owner's grants. */
export type Scope = 'maker' | 'owner' | 'admin' | 'app'

export interface Maker { id: string, name: string, createdAt: string }
export interface Owner { id: string, email: string, createdAt: string }
export interface TokenGrant { tokenId: string, scope: Scope, subject: string, /** ms since the epoch; null: never. */ expiresAt: number | null }

/** How long API tokens live and how many an account may hold. */
export interface TokenPolicy {
  /** Lifetime of an owner's session token. Default 30 days. */
  ownerTtlSeconds?: number
  /** Lifetime of a maker's API token; a maker keeps one alive with POST /v1/sessions:refresh. Default 90 days. */
  makerTtlSeconds?: number
  /** Live tokens per account; a new one past it revokes the oldest. Default 50. */
  maxLivePerAccount?: number
}

export interface Model {
  id: string
  makerId: string
  name: string
  /** As declared. */
  capabilities: CapabilityDeclaration[]
  /** Resolved against the catalogue. */
  resolved: ModelCapability[]
  /** The payload mapping; null for canonical (SDK) models. */
  mapping: unknown | null
  /** How long a device of this model may stay silent before it counts as offline; null for the hub's default. */
  heartbeatSeconds: number | null
  createdAt: string
  updatedAt: string
}

export interface DeviceRecord {
  id: string
  modelId: string
  makerId: string
  ownerId: string | null
  disabled: boolean
  createdAt: string
  claimedAt: string | null
  /** When its last owner released it: what it reported before is not its next owner's. */
  releasedAt: string | null
  /** The gateway it was provisioned under, which alone may report its readings; null for a device that connects itself. */
  gatewayId: string | null
  /** The IANA zone its local times without an offset are read in, before its model's mapping's; null for the model's. */
  timeZone: string | null
}

export interface TokenRecord { id: string, scope: Scope, label: string | null, createdAt: string, expiresAt: string | null, revokedAt: string | null }

/** One security-relevant event: who did what, to which device, from where. */
export interface AuditEntry {
  /** `device:{id}`, `owner:{id}`, `maker:{id}`, `admin`, or `anonymous`. */
  actor: string
  action: AuditAction
  deviceId?: string | null
  address?: string | null
  detail: string
}
export interface AuditRecord extends Required<AuditEntry> { id: string, at: string }
export type AuditAction =
  | 'auth-failed' | 'acl-violation' | 'rate-limited' | 'packet-too-large'
  | 'login-failed' | 'device-claimed' | 'claim-failed' | 'device-released'
  | 'secret-rotated' | 'device-disabled' | 'device-enabled' | 'token-revoked'

export interface DeviceCredentials { secretHash: string, disabled: boolean }

/** A device as a listing reads it: its record and what authenticating it needs, from one row. */
export interface DeviceEntry { record: DeviceRecord, credentials: DeviceCredentials }

export interface ProvisionedDevice { id: string, secret: string, claimCode: string }

export interface StoredState {
  deviceId: string
  online: boolean
  lastSeen: string | null
  state: Record<string, { value: unknown, ts: string }>
}

export interface ModelRow { id: string, maker_id: string, name: string, capabilities: CapabilityDeclaration[], mapping: unknown, heartbeat_seconds: number | null, created_at: Date, updated_at: Date }
export interface DeviceRow { id: string, model_id: string, maker_id: string, owner_id: string | null, disabled: boolean, created_at: Date, claimed_at: Date | null, released_at: Date | null, secret_hash: string, gateway_id: string | null, time_zone: string | null }

export const iso = (d: Date | string | null): string | null => d === null ? null : new Date(d).toISOString()

export function toModel (r: ModelRow): Model {
  return {
    id: r.id,
    makerId: r.maker_id,
    name: r.name,
    capabilities: r.capabilities,
    resolved: resolveCapabilities(r.capabilities),
    mapping: r.mapping ?? null,
    heartbeatSeconds: r.heartbeat_seconds ?? null,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  }
}

export function toDevice (r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    modelId: r.model_id,
    makerId: r.maker_id,
    ownerId: r.owner_id,
    disabled: r.disabled,
    createdAt: iso(r.created_at)!,
    claimedAt: iso(r.claimed_at),
    releasedAt: iso(r.released_at),
    gatewayId: r.gateway_id ?? null,
    timeZone: r.time_zone ?? null,
  }
}
