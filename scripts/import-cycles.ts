/**
 * Finds import cycles among a folder's TypeScript files, type-only imports
 * included (a type cycle still ties two folders together). Run:
 * `npx tsx scripts/import-cycles.ts hub/src` — prints each cycle and exits 1
 * when there is one. Only relative imports are followed: packages such as
 * `@trellis/device-sdk` sit below the hub by construction.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const importPattern = /(?:^|\n)\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"](\.{1,2}\/[^'"]+)['"]/g

function sourceFiles (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** The files each file imports, by relative specifier (`./x.js` → `./x.ts`). */
export function importGraph (root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, 'utf8')
    const targets: string[] = []
    for (const m of text.matchAll(importPattern)) targets.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')))
    graph.set(resolve(file), targets)
  }
  return graph
}

/** Every cycle found by a depth-first walk, each as the list of files around it. */
export function importCycles (root: string): string[][] {
  const graph = importGraph(root)
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const cycles: string[][] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    stack.push(file)
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(root, f)))
      else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(file, 'done')
  }
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file)
  return cycles
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? 'hub/src')
  const cycles = importCycles(root)
  for (const cycle of cycles) console.log(cycle.join(' → '))
  console.log(cycles.length === 0 ? `no import cycle in ${relative(process.cwd(), root)}` : `${cycles.length} import cycle(s)`)
  process.exitCode = cycles.length === 0 ? 0 : 1
}
