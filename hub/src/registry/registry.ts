import { EventEmitter } from 'node:events'
import type { SqlClient } from './sql.js'
import { registryMigrations } from './schema.js'
import { migrate } from './migrate.js'
import { defaultMakerQuotas, type MakerQuotas } from './quotas.js'
import { Tokens } from './tokens.js'
import { Accounts } from './accounts.js'
import { Models } from './models.js'
import { Devices } from './devices.js'
import { AuditRecords } from './audit-records.js'
import { SavedStates } from './states.js'

export type * from './records.js'
export { EmailTakenError } from './accounts.js'
export { ModelNameTakenError } from './models.js'

export interface RegistryOptions {
  /** What one maker may hold. Defaults in `defaultMakerQuotas`. */
  makerQuotas?: Partial<MakerQuotas>
}

/**
 * Makers, models, devices, owners and tokens, in SQL: one facade over one
 * file per aggregate. Secrets, tokens and claim codes are stored as SHA-256
 * digests, passwords with scrypt; what is returned in plain text is returned
 * once.
 *
 * Events: `device-changed` (deviceId), `model-changed` (modelId),
 * `credentials-changed` (deviceId: its secret was rotated or it was disabled,
 * so live sessions must close), `token-revoked` (tokenId).
 */
export class Registry extends EventEmitter {
  readonly quotas: Readonly<MakerQuotas>
  private readonly tokens: Tokens
  private readonly accounts: Accounts
  private readonly models: Models
  private readonly devices: Devices
  private readonly audit: AuditRecords
  private readonly states: SavedStates

  private constructor (private readonly db: SqlClient, opts: RegistryOptions) {
    super()
    this.quotas = { ...defaultMakerQuotas, ...opts.makerQuotas }
    this.tokens = new Tokens(db, this)
    this.accounts = new Accounts(db, this.tokens)
    this.models = new Models(db, this, this.quotas)
    this.devices = new Devices(db, this, this.quotas)
    this.audit = new AuditRecords(db)
    this.states = new SavedStates(db)
  }

  static async open (db: SqlClient, opts: RegistryOptions = {}): Promise<Registry> {
    await migrate(db, 'registry', registryMigrations)
    return new Registry(db, opts)
  }

  async close (): Promise<void> { await this.db.close() }

  // --- tokens (`tokens.ts`)
  issueToken (...args: Parameters<Tokens['issueToken']>): ReturnType<Tokens['issueToken']> { return this.tokens.issueToken(...args) }
  resolveToken (...args: Parameters<Tokens['resolveToken']>): ReturnType<Tokens['resolveToken']> { return this.tokens.resolveToken(...args) }
  listTokens (...args: Parameters<Tokens['listTokens']>): ReturnType<Tokens['listTokens']> { return this.tokens.listTokens(...args) }
  revokeToken (...args: Parameters<Tokens['revokeToken']>): ReturnType<Tokens['revokeToken']> { return this.tokens.revokeToken(...args) }

  // --- accounts (`accounts.ts`)
  createMaker (...args: Parameters<Accounts['createMaker']>): ReturnType<Accounts['createMaker']> { return this.accounts.createMaker(...args) }
  getMaker (...args: Parameters<Accounts['getMaker']>): ReturnType<Accounts['getMaker']> { return this.accounts.getMaker(...args) }
  createOwner (...args: Parameters<Accounts['createOwner']>): ReturnType<Accounts['createOwner']> { return this.accounts.createOwner(...args) }
  login (...args: Parameters<Accounts['login']>): ReturnType<Accounts['login']> { return this.accounts.login(...args) }

  // --- models (`models.ts`)
  createModel (...args: Parameters<Models['createModel']>): ReturnType<Models['createModel']> { return this.models.createModel(...args) }
  getModel (...args: Parameters<Models['getModel']>): ReturnType<Models['getModel']> { return this.models.getModel(...args) }
  listModels (...args: Parameters<Models['listModels']>): ReturnType<Models['listModels']> { return this.models.listModels(...args) }
  getModels (...args: Parameters<Models['getModels']>): ReturnType<Models['getModels']> { return this.models.getModels(...args) }
  setMapping (...args: Parameters<Models['setMapping']>): ReturnType<Models['setMapping']> { return this.models.setMapping(...args) }

  // --- devices (`devices.ts`)
  provisionDevices (...args: Parameters<Devices['provisionDevices']>): ReturnType<Devices['provisionDevices']> { return this.devices.provisionDevices(...args) }
  childIds (...args: Parameters<Devices['childIds']>): ReturnType<Devices['childIds']> { return this.devices.childIds(...args) }
  getDevice (...args: Parameters<Devices['getDevice']>): ReturnType<Devices['getDevice']> { return this.devices.getDevice(...args) }
  deviceCredentials (...args: Parameters<Devices['deviceCredentials']>): ReturnType<Devices['deviceCredentials']> { return this.devices.deviceCredentials(...args) }
  listDevices (...args: Parameters<Devices['listDevices']>): ReturnType<Devices['listDevices']> { return this.devices.listDevices(...args) }
  claimDevice (...args: Parameters<Devices['claimDevice']>): ReturnType<Devices['claimDevice']> { return this.devices.claimDevice(...args) }
  rotateDeviceSecret (...args: Parameters<Devices['rotateDeviceSecret']>): ReturnType<Devices['rotateDeviceSecret']> { return this.devices.rotateDeviceSecret(...args) }
  setDeviceDisabled (...args: Parameters<Devices['setDeviceDisabled']>): ReturnType<Devices['setDeviceDisabled']> { return this.devices.setDeviceDisabled(...args) }
  setDeviceTimeZone (...args: Parameters<Devices['setDeviceTimeZone']>): ReturnType<Devices['setDeviceTimeZone']> { return this.devices.setDeviceTimeZone(...args) }
  releaseDevice (...args: Parameters<Devices['releaseDevice']>): ReturnType<Devices['releaseDevice']> { return this.devices.releaseDevice(...args) }

  // --- audit (`audit-records.ts`)
  appendAudit (...args: Parameters<AuditRecords['appendAudit']>): ReturnType<AuditRecords['appendAudit']> { return this.audit.appendAudit(...args) }
  pruneAudit (...args: Parameters<AuditRecords['pruneAudit']>): ReturnType<AuditRecords['pruneAudit']> { return this.audit.pruneAudit(...args) }
  readAudit (...args: Parameters<AuditRecords['readAudit']>): ReturnType<AuditRecords['readAudit']> { return this.audit.readAudit(...args) }

  // --- states (`states.ts`)
  saveStates (...args: Parameters<SavedStates['saveStates']>): ReturnType<SavedStates['saveStates']> { return this.states.saveStates(...args) }
  loadStates (...args: Parameters<SavedStates['loadStates']>): ReturnType<SavedStates['loadStates']> { return this.states.loadStates(...args) }
}
