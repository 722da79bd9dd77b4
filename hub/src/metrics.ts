import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'

/** Latency buckets in seconds, from a loopback write (ms) to a flush held back by a slow InfluxDB (tens of s). */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The fields of a finished request that `observeHttp` reads (a fastify request and reply). */
export interface HttpExchange {
  method: string
  /** The route's pattern (`/v1/devices/:id`), not the path: one series per route. Undefined when no route matched. */
  route: string | undefined
  statusCode: number
  seconds: number
}

/**
 * The hub's Prometheus metrics, on a registry of its own (several hubs may
 * share a process in tests). Names and types follow Prometheus conventions:
 * a value that only grows is a counter named `…_total`; a level is a gauge;
 * durations are histograms in seconds.
 */
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
  /** Observed once per batch written, for the batch's oldest point: the hot path pays nothing per message. */
  readonly durableSeconds = new Histogram({ name: 'trellis_ingest_durable_seconds', help: 'From a reading entering its batch to InfluxDB confirming the write, for the oldest reading of each batch written.', buckets: latencyBuckets, registers: [this.registry] })
  readonly influxWriteSeconds = new Histogram({ name: 'trellis_store_write_seconds', help: 'Duration of successful write requests to InfluxDB (a batch each).', buckets: latencyBuckets, registers: [this.registry] })
  readonly httpSeconds = new Histogram({ name: 'trellis_http_request_duration_seconds', help: 'HTTP API requests by method, route pattern and status code.', labelNames: ['method', 'route', 'status_code'] as const, buckets: latencyBuckets, registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry })
    new Gauge({ name: 'trellis_build_info', help: 'Always 1; the labels say which build runs.', labelNames: ['version', 'node'] as const, registers: [this.registry] })
      .labels(hubVersion(), process.version).set(1)
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

  /** A gauge (a level that goes up and down) whose value is read when scraped. */
  gauge (name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } })
  }

  /** A counter (a count since start that only grows) kept elsewhere and read when scraped. The name must end in `_total`. */
  counter (name: string, help: string, read: () => number): void {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must be named …_total`)
    new Counter({ name, help, registers: [this.registry], collect () { this.reset(); this.inc(read()) } })
  }

  /** One finished HTTP request. */
  observeHttp (x: HttpExchange): void {
    this.httpSeconds.labels(x.method, x.route ?? 'unmatched', String(x.statusCode)).observe(x.seconds)
  }
}

let version: string | undefined
/** The hub package's version, from its package.json (two levels up from dist/src, one from src). */
function hubVersion (): string {
  if (version) return version
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === '@trellis/hub') return (version = pkg.version ?? 'unknown')
    } catch {}
  }
  return (version = 'unknown')
}
