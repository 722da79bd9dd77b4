/**
 * `npm run bench -- <name> [options]`: runs one bench and prints its table.
 * Each bench starts its own influxd, broker and hub on 127.0.0.1 ephemeral
 * ports and stops by itself.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describeOptions, parseOptions, type OptionSpecs } from './lib/options.js'

// Benches measure the sources: every process they start resolves @trellis/* to src/, as this one does.
if (!process.env.NODE_OPTIONS?.includes('--conditions=development')) {
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, '--conditions=development'].filter(Boolean).join(' ')
}

interface Bench {
  summary: string
  options: OptionSpecs
  /** A standalone script, run as a child process with the arguments as given. */
  script?: string
  run (opts: any): Promise<void>
}

async function loadBenches (): Promise<Record<string, Bench>> {
  const { ingest, ingestOptions } = await import('./ingest.js')
  const { connections, connectionsOptions } = await import('./connections.js')
  const { api, apiOptions } = await import('./api.js')
  const { overload, overloadOptions } = await import('./overload.js')
  const { hotpath, hotpathOptions } = await import('./hotpath.js')
  const { commands, commandsOptions } = await import('./commands.js')
  const { abuse, abuseOptions } = await import('./abuse.js')
  const { footprint, footprintOptions } = await import('./footprint.js')
  const benches: Record<string, Bench> = {
    ingest: { summary: 'readings stored/s at QoS 0 and 1, publish-to-state latency, against a bare-aedes baseline', options: ingestOptions, run: ingest },
    connections: { summary: 'authenticated idle devices one broker holds: connect rate, RSS per connection', options: connectionsOptions, run: connections },
    api: { summary: 'GET /v1/devices/{id} and /telemetry under load (autocannon): requests/s, p99', options: apiOptions, run: api },
    hotpath: { summary: 'hub CPU per message on the ingest path, in-process (for before/after a hot-path change)', options: hotpathOptions, run: hotpath },
    commands: { summary: 'API → device → ack round trip at 1, 10, 100 in flight, idle and beside ingest at half capacity: p50/p99', options: commandsOptions, run: commands },
    footprint: { summary: 'idle RSS of the default stack (hub + managed PostgreSQL + managed influxd), summed from /proc, against a 200 MiB budget', options: footprintOptions, run: footprint },
    overload: { summary: 'twice the measured capacity, then half: RSS over time, acked-vs-stored, shed, recovery', options: overloadOptions, run: overload },
    abuse: { summary: 'hostile tenants (cron bomb, schedule floods, …): a second owner\'s p50/p99 and hub RSS, at rest and under each abuse', options: abuseOptions, run: abuse },
  }
  // Benches written with their features are standalone scripts (they run on import):
  // dispatched as a child process when their file exists, never imported here.
  const scripts: Record<string, string> = {
    mappings: 'payloads normalized per second, canonical against each built-in dialect (bench/mappings.ts)',
    'acked-ingest': 'acknowledged QoS 1 ingest through the SDK (bench/acked-ingest.ts; options by environment, see its header)',
    soak: 'long-running soak (bench/soak.ts; see its header)',
    'remote-ingest': 'acknowledged QoS 1 ingest with the hub apart from the broker, on its persistent session (bench/remote-ingest.ts; see its header)',
  }
  for (const [name, summary] of Object.entries(scripts)) {
    const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
    if (!existsSync(file) || benches[name]) continue
    benches[name] = {
      summary,
      options: {},
      script: file,
      run: async () => { throw new Error('a script bench runs as a child process') },
    }
  }
  return benches
}

function help (benches: Record<string, Bench>): string {
  return [
    'usage: npm run bench -- <name> [options]',
    '',
    ...Object.entries(benches).flatMap(([name, b]) => [`  ${name}: ${b.summary}`, ...(b.script ? [] : [describeOptions(b.options)]), '']),
    'Every bench starts its own influxd, broker and hub on 127.0.0.1 ephemeral ports, is bounded in time, and prints a Markdown table.',
  ].join('\n')
}

async function main (): Promise<void> {
  const [name, ...rest] = process.argv.slice(2)
  const benches = await loadBenches()
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help(benches))
    return
  }
  const bench = benches[name]
  if (!bench) {
    console.error(`unknown bench "${name}"\n\n${help(benches)}`)
    process.exitCode = 2
    return
  }
  if (bench.script) {
    const child = spawn(process.execPath, ['--import', 'tsx', bench.script, ...rest], { stdio: 'inherit' })
    process.exitCode = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)))
    return
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`npm run bench -- ${name} [options]\n  ${bench.summary}\n${describeOptions(bench.options)}`)
    return
  }
  await bench.run(parseOptions(bench.options, rest))
}

main().then(() => process.exit(process.exitCode ?? 0), (err) => {
  console.error(err)
  process.exit(1)
})
