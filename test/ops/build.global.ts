import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'

const root = path.resolve(import.meta.dirname, '../..')

/**
 * Vitest global setup of the integration tests: `tsc -b` (what `npm run build` runs)
 * once before them, so the tests of the built artifact (`npm start`, `npm run hub`,
 * the packed SDK) never run a stale dist/, and no two tests build at once.
 * Incremental: about a second when nothing changed. A type error does not stop
 * the tests here (tsc still emits, and `npm test` type-checks first); it is shown.
 */
export default async function build (): Promise<void> {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    await promisify(execFile)(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } })
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string, stderr?: string }
    process.stderr.write(`npm run build reported errors; the tests of dist/ run what tsc emitted:\n${stdout}${stderr}\n`)
  }
}
