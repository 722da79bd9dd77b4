import { Counter, Gauge, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'

/** The hub's Prometheus metrics, on a registry of its own (several hubs may share a process in tests). */
export class HubMetrics {
  readonly registry = new PromRegistry()
  /**
   * Counts the ingest path keeps as plain additions, one per message being
   * cheaper than a counter call; they are added to `messages` and `readings`
   * whenever those are read (a scrape, `get()`).
   */
  readonly tally = { telemetry: 0, events: 0, presence: 0, acks: 0, readings: 0 }
  readonly messages: Counter<'channel'> = new Counter({ name: 'trellis_ingest_messages_total', help: 'MQTT messages received from devices, by channel.', labelNames: ['channel'] as const, registers: [this.registry], collect: () => this.foldTally() })
  readonly readings: Counter = new Counter({ name: 'trellis_ingest_readings_total', help: 'Readings accepted and queued for storage.', registers: [this.registry], collect: () => this.foldTally() })
  readonly rejected = new Counter({ name: 'trellis_ingest_rejected_total', help: 'Payloads or readings rejected, by reason.', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly deadLetters = new Counter({ name: 'trellis_dead_letters_total', help: 'Payloads dead-lettered.', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry })
  }

  private foldTally (): void {
    const t = this.tally
    for (const channel of ['telemetry', 'events', 'presence', 'acks'] as const) {
      if (t[channel] > 0) this.messages.labels(channel).inc(t[channel])
      t[channel] = 0
    }
    if (t.readings > 0) this.readings.inc(t.readings)
    t.readings = 0
  }

  /** A gauge whose value is read when scraped. */
  gauge (name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } })
  }
}
