import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const workerPath = fileURLToPath(new URL('../worker.ts', import.meta.url))

interface Reply { id: number, ok: boolean, result?: unknown, error?: string }

/**
 * A bench helper process (load generator, baseline broker, …): its CPU and
 * memory are its own, apart from the system under test. Calls are
 * request/reply over the IPC channel.
 */
export class BenchChild {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private exitError: Error | null = null

  private constructor (readonly role: string, private readonly proc: ChildProcess) {
    proc.on('message', (msg: Reply) => {
      const waiter = this.pending.get(msg.id)
      if (!waiter) return
      this.pending.delete(msg.id)
      if (msg.ok) waiter.resolve(msg.result)
      else waiter.reject(new Error(`${role}: ${msg.error}`))
    })
    proc.on('exit', (code, signal) => {
      this.exitError = new Error(`${role} process exited (code ${code}, signal ${signal})`)
      for (const waiter of this.pending.values()) waiter.reject(this.exitError)
      this.pending.clear()
    })
  }

  /** `nodeFlags`: more flags for the child's Node, as the process it stands for would run with. */
  static async start (role: string, opts: { maxOldSpaceMiB?: number, nodeFlags?: string[] } = {}): Promise<BenchChild> {
    const execArgv = ['--import', 'tsx', '--expose-gc', ...(opts.nodeFlags ?? [])]
    if (opts.maxOldSpaceMiB) execArgv.push(`--max-old-space-size=${opts.maxOldSpaceMiB}`)
    const proc = fork(workerPath, [role], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const child = new BenchChild(role, proc)
    await child.call('ping', {})
    return child
  }

  get pid (): number | undefined { return this.proc.pid }
  get alive (): boolean { return this.exitError === null }

  async call<T = unknown> (op: string, args: unknown): Promise<T> {
    if (this.exitError) throw this.exitError
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.proc.send({ id, op, args })
    })
  }

  async stop (): Promise<void> {
    if (!this.alive) return
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000)
    this.proc.kill('SIGTERM')
    await exited
    clearTimeout(timer)
  }
}
