/**
 * `npm run bench -- <name> [options]`: runs one bench and prints its table.
 * Each bench starts its own influxd, broker and hub on 127.0.0.1 ephemeral
 * ports and stops by itself.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describeOptions, parseOptions, type OptionSpecs } from './lib/options.js'

interface Bench {
  summary: string
  options: OptionSpecs
  run (opts: any): Promise<void>
}

async function loadBenches (): Promise<Record<string, Bench>> {
  const { ingest, ingestOptions } = await import('./ingest.js')
  const { connections, connectionsOptions } = await import('./connections.js')
  const { api, apiOptions } = await import('./api.js')
  const { overload, overloadOptions } = await import('./overload.js')
  const { hotpath, hotpathOptions } = await import('./hotpath.js')
  const benches: Record<string, Bench> = {
    ingest: { summary: 'readings stored/s at QoS 0 and 1, publish-to-state latency, against a bare-aedes baseline', options: ingestOptions, run: ingest },
    connections: { summary: 'authenticated idle devices one broker holds: connect rate, RSS per connection', options: connectionsOptions, run: connections },
    api: { summary: 'GET /v1/devices/{id} and /telemetry under load (autocannon): requests/s, p99', options: apiOptions, run: api },
    hotpath: { summary: 'hub CPU per message on the ingest path, in-process (for before/after a hot-path change)', options: hotpathOptions, run: hotpath },
    overload: { summary: 'twice the measured capacity, then half: RSS over time, acked-vs-stored, shed, recovery', options: overloadOptions, run: overload },
  }
  // The commands bench lives in its own file, written with the commands feature.
  const commandsPath = fileURLToPath(new URL('./commands.ts', import.meta.url))
  if (existsSync(commandsPath)) {
    const mod = await import(pathToFileURL(commandsPath).href) as Record<string, any>
    if (mod.commands) benches.commands = { summary: 'API → device → ack round trip at 1, 10, 100 concurrent, under half ingest load', options: mod.commandsOptions ?? {}, run: mod.commands }
  }
  return benches
}

function help (benches: Record<string, Bench>): string {
  return [
    'usage: npm run bench -- <name> [options]',
    '',
    ...Object.entries(benches).flatMap(([name, b]) => [`  ${name}: ${b.summary}`, describeOptions(b.options), '']),
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
