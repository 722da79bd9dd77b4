import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

export interface TestRedis {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
  /** Stops redis-server, as an outage would: `restart()` brings it back on the same port, empty. */
  stop (): Promise<void>
  restart (): Promise<void>
  /** Stops redis-server and removes its folder. */
  dispose (): Promise<void>
}

/** A port the kernel just gave out and took back: redis-server cannot pick its own and report it. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const keeper = `
redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$2" --protected-mode no &
pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null
wait "$pid"
rm -rf "$2"
`

async function start (at?: { port: number, dir: string }, attempt = 0): Promise<{ child: ChildProcess, port: number, dir: string }> {
  const dir = at?.dir ?? await mkdtemp(path.join(tmpdir(), 'trellis-redis-'))
  const port = at?.port ?? await freePort()
  // Under a shell that stops it when its stdin closes: when dispose() ends it, and when this process dies however it dies.
  const child = spawn('sh', ['-c', keeper, 'trellis-test-redis', String(port), dir], { stdio: ['pipe', 'pipe', 'pipe'] })
  const ready = await new Promise<boolean>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s: ${out.slice(-500)}`)), 10_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve(true) }
      if (out.includes('Address already in use')) { clearTimeout(timer); resolve(false) }
    })
    child.once('exit', () => { clearTimeout(timer); resolve(false) })
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  if (!ready) {
    // The port was taken meanwhile (the shell waited for a redis-server that could not bind).
    child.stdin!.end()
    if (at && attempt >= 20) throw new Error(`redis-server could not bind port ${port} again`)
    if (at) await new Promise((resolve) => setTimeout(resolve, 100))
    return await start(at, attempt + 1)
  }
  child.stdout!.resume()
  child.stderr!.resume()
  return { child, port, dir }
}

/** A redis-server from the OS package on a free 127.0.0.1 port, nothing saved to disk. One per test file. */
export async function startTestRedis (): Promise<TestRedis> {
  let { child, port, dir } = await start()
  // The keeper removes the folder as redis-server exits: a restart makes it anew.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.stdin!.end()
      await exited
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart () {
      await stop()
      await mkdir(dir, { recursive: true })
      ;({ child } = await start({ port, dir }))
    },
    async dispose () {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
