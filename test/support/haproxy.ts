import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './redis.js'

export interface HaproxyNode {
  /** `mqtt://127.0.0.1:PORT` of the node's broker. */
  mqttUrl: string
  /** `http://127.0.0.1:PORT` of the node's API. */
  httpUrl: string
}

export interface TestHaproxy {
  readonly mqttUrl: string
  readonly httpUrl: string
  /** Stops haproxy and removes its folder. */
  dispose (): Promise<void>
}

const binary = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy'

/** What docs/scaling.md describes: MQTT over TCP with health checks, HTTP with /healthz checks, both round robin. */
export function haproxyConfig (nodes: HaproxyNode[], ports: { mqtt: number, http: number }): string {
  const hostPort = (url: string) => new URL(url).host
  return `global
  maxconn 4096

defaults
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout check 1s

frontend mqtt
  mode tcp
  bind 127.0.0.1:${ports.mqtt}
  default_backend mqtt_nodes

backend mqtt_nodes
  mode tcp
  balance roundrobin
  option tcp-check
${nodes.map((n, i) => `  server node${i} ${hostPort(n.mqttUrl)} check inter 500ms fall 2 rise 1`).join('\n')}

frontend http
  mode http
  bind 127.0.0.1:${ports.http}
  default_backend http_nodes

backend http_nodes
  mode http
  balance roundrobin
  option httpchk GET /healthz
${nodes.map((n, i) => `  server node${i} ${hostPort(n.httpUrl)} check inter 500ms fall 2 rise 1`).join('\n')}
`
}

const keeper = `
"$1" -db -f "$2" &
pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null
wait "$pid"
rm -rf "$3"
`

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** haproxy (Debian's package) in front of `nodes` on free 127.0.0.1 ports, under a shell that stops it when this process dies. */
export async function startTestHaproxy (nodes: HaproxyNode[]): Promise<TestHaproxy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-haproxy-'))
  const ports = { mqtt: await freePort(), http: await freePort() }
  const file = path.join(dir, 'haproxy.cfg')
  await writeFile(file, haproxyConfig(nodes, ports))
  const child: ChildProcess = spawn('sh', ['-c', keeper, 'trellis-test-haproxy', binary, file, dir], { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
  const dispose = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.stdin!.end()
    await exited
  }
  const deadline = Date.now() + 10_000
  while (!(await accepts(ports.mqtt) && await accepts(ports.http))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await dispose()
      throw new Error(`haproxy did not start: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, httpUrl: `http://127.0.0.1:${ports.http}`, dispose }
}
