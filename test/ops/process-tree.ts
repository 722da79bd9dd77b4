import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { eventually } from '../support/wait.js'

export const root = path.resolve(import.meta.dirname, '../..')

/** Every live process below `pid` (children, grandchildren …), read from /proc. */
export function descendantsOf (pid: number): number[] {
  const parentOf = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // The command name (field 2) may hold spaces and parentheses: fields after the last ')' are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z') continue
      parentOf.set(Number(entry), Number(fields[1]))
    } catch {}
  }
  const found: number[] = []
  const walk = (parent: number) => {
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) { found.push(child); walk(child) }
    }
  }
  walk(pid)
  return found
}

export function isAlive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

export function commandOf (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() } catch { return '?' }
}

export interface Launched {
  child: ChildProcess
  /** stdout and stderr as they came. */
  output: () => string
  /** stdout alone. */
  stdout: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  dataDir: string
  /** SIGKILLs whatever is left of the tree and removes the data folder. */
  cleanUp (): Promise<void>
}

/** Runs a command from the project root with a fresh DATA_DIR on ephemeral ports and waits until its output shows `ready`. */
export async function launch (command: string, args: string[], ready: RegExp, env: Record<string, string> = {}, opts: { timeoutMs?: number, ownGroup?: boolean } = {}): Promise<Launched> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const dataDir = await mkdtemp(path.join(tmpdir(), 'trellis-ops-'))
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '', DATA_DIR: dataDir, PORT: '0', MQTT_PORT: '0', FLEET_SIZE: '2', FLEET_INTERVAL_MS: '500', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as a terminal's foreground job has: the test can signal the group as Ctrl-C does.
    detached: opts.ownGroup ?? false,
  })
  let out = ''
  let stdout = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); stdout += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const seen = new Set<number>()
  const launched: Launched = {
    child,
    output: () => out,
    stdout: () => stdout,
    exited,
    dataDir,
    async cleanUp () {
      for (const pid of [child.pid!, ...seen, ...descendantsOf(child.pid!)]) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      await rm(dataDir, { recursive: true, force: true })
    },
  }
  try {
    await eventually(() => { for (const p of descendantsOf(child.pid!)) seen.add(p); return out }, (o) => ready.test(o) || child.exitCode !== null, { timeoutMs, what: `${ready} in the output` })
    if (!ready.test(out)) throw new Error(`${command} ${args.join(' ')} exited before it was ready:\n${out}`)
  } catch (err) {
    await launched.cleanUp()
    throw err
  }
  return launched
}
