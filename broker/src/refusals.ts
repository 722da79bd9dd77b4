import type { Client } from 'aedes'
import { KeyedBuckets, type Rate } from './limits.js'
import { deviceOf, printable, remoteAddress, type BrokerParts } from './clients.js'
import type { Denial } from './policy.js'

export interface SubscribeRefusalOptions {
  /**
   * After a client's first refused filter (audited and logged at once), its
   * further refusals are counted and audited and logged as one summary per
   * this many ms. Default 10000.
   */
  summaryIntervalMs?: number
  /**
   * Refused filters a client may send: past this it is disconnected. A device
   * asks for its one command topic; a client asking again and again for what
   * it may not have is probing. Default 1/s, burst 20.
   */
  budget?: Rate
}

interface Tally {
  client: Client
  /** Refusals since the last row. */
  count: number
  last: { topic: string, denial: Denial }
}

/**
 * Audits refused subscriptions at a bounded rate, per client: the first one
 * at once, then a summary with the count per interval; a client past its
 * budget is disconnected, with one row saying so. A SUBSCRIBE flood once
 * wrote an audit row and a warning line per filter (50,400 rows and 10.8 MB
 * of log in 20 s) and made the audit log drop entries.
 */
export class SubscribeRefusals {
  private readonly tallies = new Map<Client, Tally>()
  /** Clients being disconnected: what they still had in flight is counted, not reported. */
  private readonly cut = new WeakSet<Client>()
  private readonly budget: KeyedBuckets
  private readonly intervalMs: number
  private timer: NodeJS.Timeout | null = null

  constructor (opts: SubscribeRefusalOptions, private readonly parts: BrokerParts) {
    this.budget = new KeyedBuckets(opts.budget ?? { perSecond: 1, burst: 20 })
    this.intervalMs = opts.summaryIntervalMs ?? 10_000
  }

  /** Counts one refused filter of `client`, and reports or disconnects as above. */
  refused (client: Client, topic: string, denial: Denial): void {
    const { stats, log, report } = this.parts
    stats.subscribeDenied++
    if (this.cut.has(client)) return
    const shown = printable(topic)
    let tally = this.tallies.get(client)
    if (!tally) {
      this.tallies.set(client, tally = { client, count: 0, last: { topic: shown, denial } })
      log.warn({ clientId: client.id, topic: shown, denial }, 'subscription denied')
      report({ type: 'acl-violation', deviceId: deviceOf(client), address: remoteAddress(client), detail: `subscription to ${shown} denied (${denial})` })
      this.timer ??= setInterval(() => this.summarize(), this.intervalMs).unref()
    } else {
      tally.count++
      tally.last = { topic: shown, denial }
    }
    if (!this.budget.take(client.id) && !client.closed) {
      const detail = `${tally.count + 1} refused subscriptions since the last report, over the limit; disconnected (last: ${tally.last.topic}, ${tally.last.denial})`
      this.tallies.delete(client)
      this.cut.add(client)
      this.budget.forget(client.id)
      log.warn({ clientId: client.id }, 'refused subscriptions over the limit; disconnecting')
      report({ type: 'acl-violation', deviceId: deviceOf(client), address: remoteAddress(client), detail })
      // After aedes has answered this SUBSCRIBE: closing inside its authorization hook would leave it half handled.
      setImmediate(() => client.close())
    }
  }

  /** Forgets a client that is gone; what it was refused since the last row is reported now. */
  forget (client: Client): void {
    const tally = this.tallies.get(client)
    if (!tally) return
    this.tallies.delete(client)
    if (tally.count > 0) this.report(tally)
  }

  close (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private summarize (): void {
    for (const tally of this.tallies.values()) {
      // A quiet interval ends the tally: the next refusal is reported at once again.
      if (tally.count === 0) this.tallies.delete(tally.client)
      else this.report(tally)
    }
    if (this.tallies.size === 0) this.close()
  }

  private report (tally: Tally): void {
    const detail = `${tally.count} more subscriptions refused in the last ${this.intervalMs >= 1000 ? `${Math.round(this.intervalMs / 1000)} s` : `${this.intervalMs} ms`} (last: ${tally.last.topic}, ${tally.last.denial})`
    this.parts.log.warn({ clientId: tally.client.id, refused: tally.count }, 'subscriptions denied')
    this.parts.report({ type: 'acl-violation', deviceId: deviceOf(tally.client), address: remoteAddress(tally.client), detail })
    tally.count = 0
  }
}
