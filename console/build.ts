import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)

/** What one build wrote: each file with its size in bytes. */
export interface ConsoleBuild { dir: string, files: Record<string, number> }

/**
 * Bundles the console from `console/src` into `outDir` (default
 * `console/dist`, where the hub serves it from): `index.html`, `app.js`
 * (Preact and uPlot included, minified) and `app.css`. Offline: everything
 * comes from node_modules. Each file is written beside its target and renamed
 * over it, so a hub serving the folder never reads half a file.
 */
export async function buildConsole (outDir = path.join(here, 'dist')): Promise<ConsoleBuild> {
  await mkdir(outDir, { recursive: true })
  const bundled = await build({
    entryPoints: [path.join(here, 'src/main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2020',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  })
  const css = [
    await readFile(path.join(root, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8'),
    await readFile(path.join(here, 'src/console.css'), 'utf8'),
  ].join('\n')
  const outputs: Record<string, string | Uint8Array> = {
    'app.js': bundled.outputFiles[0].contents,
    'app.css': css,
    'index.html': await readFile(path.join(here, 'src/index.html'), 'utf8'),
  }
  const files: Record<string, number> = {}
  for (const [name, content] of Object.entries(outputs)) {
    const target = path.join(outDir, name)
    const temporary = `${target}.${process.pid}.tmp`
    await writeFile(temporary, content)
    await rename(temporary, target)
    files[name] = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength
  }
  return { dir: outDir, files }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { dir, files } = await buildConsole()
  const sizes = Object.entries(files).map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(1)} KiB`).join(', ')
  process.stdout.write(`console built in ${path.relative(process.cwd(), dir) || '.'}: ${sizes}\n`)
}
