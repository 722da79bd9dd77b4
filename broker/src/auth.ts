import type { AedesOptions } from 'aedes'
import { isDeviceId } from '@trellis/device-sdk/topics'
import { KeyedBuckets } from './limits.js'
import type { BrokerOptions } from './options.js'
import { remoteAddress, safeEqual, sha256, type BrokerParts } from './clients.js'

/** Which failure limit a spend was of: per client id or per remote address. */
export type AuthFailureLimit = 'clientId' | 'address'

/**
 * The failure budgets of `authenticator`. `spend` counts a failure here and
 * tells `opts.onAuthFailureSpent`; `applySpent` counts one another node of a
 * cluster saw, so a guesser has one budget across the cluster.
 */
export class AuthFailureBudgets {
  readonly byClientId: KeyedBuckets
  readonly byAddress: KeyedBuckets

  constructor (private readonly opts: BrokerOptions) {
    this.byClientId = new KeyedBuckets(opts.authFailuresPerClientId ?? { perSecond: 0.2, burst: 10 })
    this.byAddress = new KeyedBuckets(opts.authFailuresPerAddress ?? { perSecond: 5, burst: 100 })
  }

  /** Resolves once `onAuthFailureSpent` has told the others (at once without it). */
  async spend (limit: AuthFailureLimit, key: string): Promise<void> {
    this.applySpent(limit, key)
    await this.opts.onAuthFailureSpent?.(limit, key)
  }

  applySpent (limit: AuthFailureLimit, key: string): void {
    if (limit === 'clientId') this.byClientId.take(key.slice(0, 65))
    else if (limit === 'address') this.byAddress.take(key)
  }
}

/**
 * The CONNECT check: a device by its id and secret (client id = username =
 * device id), the hub's service principal by its name and secret, each
 * behind failure limits per client id and per address (see `BrokerOptions`).
 * `serviceClientIds` learns the client ids the service connected with.
 */
export function authenticator (opts: BrokerOptions, parts: BrokerParts, serviceClientIds: Set<string>, budgets: AuthFailureBudgets): NonNullable<AedesOptions['authenticate']> {
  const { log, stats, report } = parts
  const serviceHash = opts.service && sha256(opts.service.secret)
  const { byClientId: failuresById, byAddress: failuresByAddress } = budgets
  return (client, username, password, done) => {
    const address = remoteAddress(client)
    // MQTT 3.1.1 allows 65535-byte client ids; only a device id's 64 characters are ever kept (throttle keys, audit).
    const claimed = (client.requestedClientId ?? '').slice(0, 65)
    const refuse = (reason: string, returnCode = 4) => {
      log.debug({ clientId: claimed, address, reason }, 'connection refused')
      done(Object.assign(new Error(reason), { returnCode }), false)
    }
    // Over its limit, a client id's failures are refused quietly (see authFailuresPerClientId).
    const idThrottled = !failuresById.has(claimed)
    const fail = (reason: string, returnCode = 4) => {
      const spent = address ? budgets.spend('address', address) : undefined
      if (idThrottled) {
        stats.authThrottled++
        return refuse('too many failed attempts; try again later', 3)
      }
      stats.authFailures++
      report({ type: 'auth-failed', deviceId: claimed || null, address, detail: reason })
      // Refused once the other nodes of a cluster know of the failure: a guesser's next try at another node counts it.
      void Promise.all([spent, budgets.spend('clientId', claimed)]).then(() => refuse(reason, returnCode))
    }
    // aedes would invent an id for an empty one and, with clean=false, keep a session under it (MQTT-3.1.3-8).
    if (claimed === '') return fail('a client id (the device id) is required', 2)
    if (/[+#/\u0000]/.test(claimed) || /[+#/\u0000]/.test(username ?? '')) return fail('client id and username may not contain +, #, / or NUL', 2)
    if (claimed.length > 64) return fail('a client id is at most 64 characters (a device id)', 2)
    if (address !== null && !failuresByAddress.has(address)) {
      // Refused unchecked: a flood from one address costs neither a lookup nor a hash, nor an audit row each.
      stats.authThrottled++
      return refuse('too many failed attempts; try again later', 3)
    }
    const secret = password?.toString('utf8') ?? ''
    if (opts.service && username === opts.service.username) {
      if (!safeEqual(sha256(secret), serviceHash!)) return fail('bad service credentials')
      client.principal = { kind: 'service', name: username }
      serviceClientIds.add(claimed)
      return done(null, true)
    }
    if (!username || claimed !== username) return fail('client id must equal the username (the device id)', 2)
    if (!isDeviceId(username)) return fail('not a device id', 2)
    if (idThrottled && opts.authenticateDeviceFromMemory) {
      const ok = opts.authenticateDeviceFromMemory(username, secret)
      if (ok === undefined) {
        stats.authThrottled++
        return refuse('too many failed attempts; try again later', 3)
      }
      if (!ok) return fail('bad device id or secret')
      client.principal = { kind: 'device', deviceId: username }
      return done(null, true)
    }
    Promise.resolve(opts.authenticateDevice(username, secret)).then((ok) => {
      if (!ok) return fail('bad device id or secret')
      client.principal = { kind: 'device', deviceId: username }
      done(null, true)
    }, (err: Error) => {
      log.error({ err, clientId: username }, 'device authentication failed')
      refuse('server unavailable', 3)
    })
  }
}
