import http from 'node:http'
import https from 'node:https'

/** How to reach InfluxDB's v1 HTTP API (InfluxDB 1.x, or 2.x/3.x through their v1-compatible endpoints). */
export interface InfluxConnection {
  /**
   * Base URL: `http://` or `https://`, optionally with `user:password@`
   * (InfluxDB 1.x with `auth-enabled`). Default port 8086.
   */
  url: string
  /**
   * API token, sent as `Authorization: Token …` (InfluxDB 2.x/3.x). Takes
   * precedence over a user and password in the URL. Default none.
   */
  token?: string
  /** Extra CA certificates (PEM) to trust for an `https:` URL, e.g. a self-signed one. Default: Node's (and NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer
}

/** What InfluxDB answered: its status and body. */
export interface InfluxResponse {
  status: number
  text: string
}

/** InfluxDB could not be reached, or answered in a way that says nothing about the points. */
export class InfluxRequestError extends Error {
  constructor (message: string, readonly status: number | null = null) {
    super(message)
    this.name = 'InfluxRequestError'
  }

  /** 401/403: the credentials are wrong or lack rights. A configuration error, not a passing one. */
  get unauthorized (): boolean {
    return this.status === 401 || this.status === 403
  }
}

/** Longest part of an InfluxDB error message kept in an error or a log line. */
const maxMessage = 300

/**
 * A small HTTP client for InfluxDB's v1 API that honours the URL's scheme,
 * credentials and a token. Its errors carry method, path, status and
 * InfluxDB's message, never request headers or credentials.
 */
export class InfluxHttp {
  private readonly request: typeof http.request
  private readonly agent: http.Agent
  private readonly host: string
  private readonly port: number
  private readonly basePath: string
  private readonly authorization: string | null

  constructor (conn: InfluxConnection, private readonly timeoutMs = 10_000) {
    const url = new URL(conn.url)
    const secure = url.protocol === 'https:'
    if (!secure && url.protocol !== 'http:') throw new Error(`InfluxDB URL must be http: or https:, got ${url.protocol}`)
    this.request = secure ? https.request : http.request
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: 8, ...(conn.ca && { ca: conn.ca }) })
      : new http.Agent({ keepAlive: true, maxSockets: 8 })
    this.host = url.hostname
    this.port = Number(url.port || 8086)
    this.basePath = url.pathname.replace(/\/$/, '')
    this.authorization = authorizationOf(conn)
  }

  /** POSTs `body` to `path` (below the URL's own path); resolves with any status, rejects when there is no answer. */
  async post (path: string, body: string, contentType = 'text/plain; charset=utf-8'): Promise<InfluxResponse> {
    return await this.send('POST', path, body, contentType)
  }

  /** GETs `path`; resolves with any status, rejects when there is no answer within `timeoutMs`. */
  async get (path: string, timeoutMs?: number): Promise<InfluxResponse> {
    return await this.send('GET', path, undefined, undefined, timeoutMs)
  }

  private async send (method: 'GET' | 'POST', path: string, body?: string, contentType?: string, timeoutMs = this.timeoutMs): Promise<InfluxResponse> {
    const fullPath = this.basePath + path
    return await new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {}
      if (body !== undefined) {
        headers['content-type'] = contentType
        headers['content-length'] = Buffer.byteLength(body)
      }
      if (this.authorization) headers.authorization = this.authorization
      const req = this.request({
        host: this.host,
        port: this.port,
        path: fullPath,
        method,
        agent: this.agent,
        timeout: timeoutMs,
        headers,
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', (err) => reject(new InfluxRequestError(`${method} ${publicPath(fullPath)}: ${err.message}`)))
      })
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.on('error', (err) => reject(new InfluxRequestError(`${method} ${publicPath(fullPath)}: ${err.message}`)))
      req.end(body)
    })
  }

  /** An error for an answer that is not the one expected: method, path, status and InfluxDB's message. */
  failure (method: 'GET' | 'POST', path: string, res: InfluxResponse): InfluxRequestError {
    return new InfluxRequestError(`InfluxDB answered ${res.status} to ${method} ${publicPath(this.basePath + path)}: ${influxMessage(res.text) ?? 'no message'}`, res.status)
  }

  close (): void {
    this.agent.destroy()
  }
}

/** The Authorization header for a connection, or null when it has no credentials. */
export function authorizationOf (conn: InfluxConnection): string | null {
  if (conn.token) return `Token ${conn.token}`
  const url = new URL(conn.url)
  if (!url.username) return null
  const user = decodeURIComponent(url.username)
  const password = decodeURIComponent(url.password)
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

/** A path fit for an error or a log: the query string keeps only `db`, never `u`, `p`, `q` or anything else. */
export function publicPath (path: string): string {
  const [pathname, query] = path.split('?', 2)
  if (!query) return pathname
  const db = new URLSearchParams(query).get('db')
  return db === null ? pathname : `${pathname}?db=${encodeURIComponent(db)}`
}

/** InfluxDB's own error message from a response body (`{"error": …}` or text), truncated; null when empty. */
export function influxMessage (text: string): string | null {
  let message: string | null = text || null
  try {
    const body = JSON.parse(text) as { error?: unknown }
    if (typeof body.error === 'string') message = body.error
  } catch {}
  if (message === null) return null
  message = message.trim()
  return message.length > maxMessage ? `${message.slice(0, maxMessage)}…` : message
}
