import { parseArgs } from 'node:util'

/** One option of a bench: its default is part of its declaration, and of `--help`. */
export interface OptionSpec {
  readonly default: number | string | boolean
  readonly help: string
}

export type OptionSpecs = Record<string, OptionSpec>
export type Options<S extends OptionSpecs> = { [K in keyof S]: S[K]['default'] extends number ? number : S[K]['default'] extends boolean ? boolean : string }

/** Parses `--name value` flags against the specs; numbers accept 1_000 and 1e3. */
export function parseOptions<S extends OptionSpecs> (specs: S, argv: readonly string[]): Options<S> {
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { type: typeof spec.default === 'boolean' ? 'boolean' : 'string' }])) as never,
    strict: true,
    allowPositionals: false,
  })
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(specs)) {
    const raw = (values as Record<string, unknown>)[name]
    if (raw === undefined) { out[name] = spec.default; continue }
    if (typeof spec.default === 'number') {
      const n = Number(String(raw).replaceAll('_', ''))
      if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${String(raw)}`)
      out[name] = n
    } else out[name] = raw
  }
  return out as Options<S>
}

export function describeOptions (specs: OptionSpecs): string {
  return Object.entries(specs)
    .map(([name, spec]) => `    --${name.padEnd(18)} ${spec.help} Default ${JSON.stringify(spec.default)}.`)
    .join('\n')
}
