import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { startInfluxd, type ManagedInfluxd } from '@trellis/hub'

export interface TestInflux extends ManagedInfluxd {
  readonly dir: string
  /** The self-signed certificate influxd serves, when started with `tls`. */
  readonly ca?: Buffer
  /** The admin created at start, when started with `auth`. */
  readonly admin?: { user: string, password: string }
  /** Stops influxd and removes its folder. */
  dispose (): Promise<void>
}

export interface TestInfluxOptions {
  /** Restart influxd if it dies. Default false. */
  supervise?: boolean
  /** `auth-enabled = true`, with an admin user created through the API. Default false. */
  auth?: boolean
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 made by openssl. Default false. */
  tls?: boolean
}

/** A real influxd on an ephemeral 127.0.0.1 port, in a temporary folder. One per test file. */
export async function startTestInflux (opts: TestInfluxOptions = {}): Promise<TestInflux> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-influx-'))
  let ca: Buffer | undefined
  if (opts.tls) {
    const certFile = path.join(dir, 'cert.pem')
    const keyFile = path.join(dir, 'key.pem')
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile])
    ca = await readFile(certFile)
  }
  const influxd = await startInfluxd({
    dataDir: dir,
    supervise: opts.supervise ?? false,
    authEnabled: opts.auth ?? false,
    ...(opts.tls && { https: { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') } }),
  })
  let admin: { user: string, password: string } | undefined
  if (opts.auth) {
    // With auth on and no user yet, InfluxDB 1.x takes exactly this statement unauthenticated.
    admin = { user: 'admin', password: 'test-admin-secret' }
    await influxRequest({ url: influxd.url, ca }, 'POST', `/query?q=${encodeURIComponent(`CREATE USER "${admin.user}" WITH PASSWORD '${admin.password}' WITH ALL PRIVILEGES`)}`)
  }
  return {
    get url () { return influxd.url },
    get port () { return influxd.port },
    get pid () { return influxd.pid },
    dir,
    ca,
    admin,
    stop: () => influxd.stop(),
    kill: (signal?: NodeJS.Signals) => influxd.kill(signal),
    ready: () => influxd.ready(),
    async dispose () {
      await influxd.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** How a test reaches an influxd directly, bypassing the hub. */
export interface InfluxTarget {
  url: string
  ca?: Buffer
  /** Basic credentials; default none. */
  admin?: { user: string, password: string }
}

/** One request to influxd; resolves with its status and body whatever the status. */
export async function influxRequest (target: InfluxTarget, method: 'GET' | 'POST', pathAndQuery: string, body?: string): Promise<{ status: number, text: string }> {
  const url = new URL(pathAndQuery, target.url)
  const request = url.protocol === 'https:' ? https.request : http.request
  const headers: http.OutgoingHttpHeaders = {}
  if (target.admin) headers.authorization = `Basic ${Buffer.from(`${target.admin.user}:${target.admin.password}`).toString('base64')}`
  return await new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ...(target.ca && { ca: target.ca }), timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 10 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs an InfluxQL query against the test server directly, bypassing the hub. */
export async function influxQuery (target: string | InfluxTarget, q: string, db = 'trellis'): Promise<Array<Record<string, unknown>>> {
  const t = typeof target === 'string' ? { url: target } : target
  const res = await influxRequest(t, 'GET', `/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`)
  const body = JSON.parse(res.text) as { error?: string, results?: Array<{ series?: Array<{ columns: string[], tags?: Record<string, string>, values: unknown[][] }>, error?: string }> }
  if (body.error) throw new Error(body.error)
  const result = body.results![0]
  if (result.error) throw new Error(result.error)
  const rows: Array<Record<string, unknown>> = []
  for (const series of result.series ?? []) {
    for (const values of series.values) rows.push({ ...series.tags, ...Object.fromEntries(series.columns.map((c, i) => [c, values[i]])) })
  }
  return rows
}
