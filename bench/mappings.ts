/**
 * `npx tsx --conditions=development bench/mappings.ts`: payloads normalized per second on one core,
 * canonical JSON against each built-in dialect's compiled mapping, so a
 * change to the mapping compiler shows its cost on the hot path. Pure CPU:
 * no broker, no storage. Each measurement stops after `--ms` (default 1000).
 */
import { resolveCapabilities, type CapabilityDeclaration } from '@trellis/device-sdk'
import { builtInDialects } from '@trellis/hub/adapters'
import { compileModel, type CompiledModel } from '../hub/src/normalize/model.js'
import { normalizeTelemetry } from '../hub/src/normalize/index.js'

const budgetMs = Number(process.argv[process.argv.indexOf('--ms') + 1]) || 1000

function compile (name: string, capabilities: CapabilityDeclaration[], mapping: unknown): CompiledModel {
  return compileModel({ id: name, makerId: 'mk', name, resolved: resolveCapabilities(capabilities), mapping, heartbeatSeconds: null })
}

/** Messages per second for `payload`, measured in rounds of 1,000 until the budget is spent. */
function rate (model: CompiledModel, payload: Buffer): number {
  const now = Date.now()
  for (let i = 0; i < 2_000; i++) normalizeTelemetry(payload, model, now) // warm up the JIT
  let done = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(budgetMs) * 1_000_000n
  let t = start
  while (t < deadline) {
    for (let i = 0; i < 1_000; i++) {
      const result = normalizeTelemetry(payload, model, now)
      if (!result.ok || result.value.problems.length > 0) throw new Error(`bench payload rejected: ${JSON.stringify(result)}`)
    }
    done += 1_000
    t = process.hrtime.bigint()
  }
  return done / (Number(t - start) / 1e9)
}

const canonical = compile('canonical', ['temperature', 'targetTemperature', 'contact', 'rssi'], null)
const baseline = rate(canonical, Buffer.from(JSON.stringify({ ts: Date.now() - 1000, readings: { temperature: 4.2, targetTemperature: 4, contact: true, rssi: -67 } })))
const rows: Array<[string, string, string]> = [['canonical JSON (4 readings)', Math.round(baseline).toLocaleString('en'), '1.00']]
for (const d of builtInDialects) {
  const model = compile(d.model.name, d.model.capabilities, d.model.mapping)
  const sample = d.samples[0]
  const r = rate(model, Buffer.from(sample.payload))
  rows.push([`${d.model.name} (${d.model.mapping.format}, ${Object.keys(sample.readings).length} readings)`, Math.round(r).toLocaleString('en'), (r / baseline).toFixed(2)])
}
const width = Math.max(...rows.map((r) => r[0].length))
console.log(`${'payload'.padEnd(width)}  ${'msgs/s'.padStart(10)}  vs canonical`)
for (const [name, r, ratio] of rows) console.log(`${name.padEnd(width)}  ${r.padStart(10)}  ${ratio}`)
