import { Counter, Gauge, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'

/** The hub's Prometheus metrics, on a registry of its own (several hubs may share a process in tests). */
export class HubMetrics {
  readonly registry = new PromRegistry()
  readonly messages = new Counter({ name: 'trellis_ingest_messages_total', help: 'MQTT messages received from devices, by channel.', labelNames: ['channel'] as const, registers: [this.registry] })
  readonly readings = new Counter({ name: 'trellis_ingest_readings_total', help: 'Readings accepted and queued for storage.', registers: [this.registry] })
  readonly rejected = new Counter({ name: 'trellis_ingest_rejected_total', help: 'Payloads or readings rejected, by reason.', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly deadLetters = new Counter({ name: 'trellis_dead_letters_total', help: 'Payloads dead-lettered.', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry })
  }

  /** A gauge whose value is read when scraped. */
  gauge (name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } })
  }
}
