import http from 'node:http'
import type net from 'node:net'
import { startInfluxd, type ManagedInfluxd } from '@trellis/hub'

/**
 * Starts influxd again on the data folder and port it had, as an operator
 * restarting it would: the hub keeps the URL it was given.
 */
export async function restartInflux (dir: string, port: number): Promise<ManagedInfluxd> {
  return await startInfluxd({ dataDir: dir, port, supervise: false })
}

export interface SlowProxy {
  readonly url: string
  /** Added to every response, in ms; change it at will. */
  delayMs: number
  /** Requests forwarded so far. */
  readonly forwarded: number
  close (): Promise<void>
}

/** An HTTP proxy to `target` on an ephemeral 127.0.0.1 port that holds every answer `delayMs`: a slow InfluxDB. */
export async function startSlowProxy (target: string, delayMs: number): Promise<SlowProxy> {
  const to = new URL(target)
  const agent = new http.Agent({ keepAlive: true })
  let forwarded = 0
  const sockets = new Set<net.Socket>()
  const proxy = {
    url: '',
    delayMs,
    get forwarded () { return forwarded },
    close: async () => {
      for (const s of sockets) s.destroy()
      agent.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers, agent }, (answer) => {
      const chunks: Buffer[] = []
      answer.on('data', (c: Buffer) => chunks.push(c))
      answer.on('end', () => {
        forwarded++
        setTimeout(() => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          res.end(Buffer.concat(chunks))
        }, proxy.delayMs)
      })
    })
    upstream.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(upstream)
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  proxy.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  return proxy
}

/** Reads one sample (no labels, or the given label set) from a Prometheus text page. */
export function metricValue (text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}

export async function scrape (httpUrl: string): Promise<string> {
  const res = await fetch(`${httpUrl}/metrics`)
  return await res.text()
}
