import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { sha256, safeEqual } from '../crypto.js'
import type { TokenPolicy } from '../registry/registry.js'
import { ApiError, errors } from './errors.js'
import { apiErrorOf } from './domain-errors.js'
import { openApiDocument, registerRoutes, type Caller, type RouteDef } from './route.js'
import type { ApiContext } from './context.js'
import { systemRoutes } from './routes/system.js'
import { accountRoutes } from './routes/accounts.js'
import { modelRoutes } from './routes/models.js'
import { deviceRoutes } from './routes/devices.js'
import { credentialRoutes } from './routes/credentials.js'
import { auditRoutes } from './routes/audit.js'
import { grantRoutes } from './routes/grants.js'
import { insightRoutes } from './routes/insight.js'
import { consoleSessionRoutes, serveConsole } from './console.js'
import { RequestThrottle, type ApiRateLimits } from './throttle.js'
import { jsonDepthExceeds } from './json-depth.js'

export interface ApiOptions {
  /** Largest request body in bytes. Default 1 MiB. */
  bodyLimit?: number
  /** Deepest nesting of arrays and objects in a JSON body; deeper is 400 BODY_TOO_DEEP. Default 64. */
  maxJsonDepth?: number
  /** Seconds a resolved token is trusted before the registry is asked again. Default 30. */
  tokenCacheSeconds?: number
  /**
   * The platform admin's bearer token (`main.ts` reads it from TRELLIS_ADMIN_TOKEN).
   * Default: none, so no caller is admin.
   */
  adminToken?: string
  /** PEM certificate and key: serve HTTPS. Default: plain HTTP. */
  https?: { cert: string | Buffer, key: string | Buffer }
  /** Rate limits on sign-up, login, claim, history and each account's requests. Defaults in `ApiRateLimits`. */
  rateLimits?: ApiRateLimits
  /** The throttle itself, when it is shared (a cluster's spends every node's); default a new one from `rateLimits`. */
  throttle?: RequestThrottle
  /** Lifetime and number of API tokens. Defaults in `TokenPolicy`. */
  tokens?: TokenPolicy
  /**
   * Which proxies to believe about the client's address (`X-Forwarded-For`):
   * true for any, or addresses and CIDR ranges (`127.0.0.1,10.0.0.0/8`). Every per-address
   * limit counts by the address this gives. Default false: the socket's address.
   */
  trustProxy?: boolean | string | string[]
  /** Origins a browser may call the API from (`https://console.example.com`). Default none: no CORS headers. */
  corsOrigins?: string[]
  /** Open HTTP connections, event streams and MQTT over WebSocket included; past it new ones are closed at once. Default 4096. */
  maxConnections?: number
  /** More routes (from other modules) to serve and document. */
  extraRoutes?: (api: ApiContext) => RouteDef<any, any, any, any>[]
}

export interface Api {
  app: FastifyInstance
  routes: RouteDef<any, any, any, any>[]
}

export function buildApi (context: Omit<ApiContext, 'throttle' | 'tokens'>, logger: Logger, opts: ApiOptions = {}): Api {
  const api: ApiContext = { ...context, throttle: opts.throttle ?? new RequestThrottle(opts.rateLimits), tokens: opts.tokens ?? {} }
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024
  const maxJsonDepth = opts.maxJsonDepth ?? 64
  const app = Fastify({
    ...(opts.https && { https: { cert: opts.https.cert, key: opts.https.key } }),
    loggerInstance: logger.child({ component: 'api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    trustProxy: opts.trustProxy ?? false,
    // A client gets 30 s to send its whole request, so slow senders cannot hold sockets open (Node's default: 300 s).
    requestTimeout: 30_000,
    // Our route helper parses with zod; fastify's own validation is not used.
    ajv: { customOptions: { coerceTypes: false } },
  })
  // Each connection holds a descriptor; event streams hold theirs for hours.
  app.server.maxConnections = opts.maxConnections ?? 4096

  // Depth is checked on the text, before parsing: zod and the handlers recurse, so a
  // 5,000-deep body would otherwise overflow the stack.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (jsonDepthExceeds(body as string, maxJsonDepth)) {
      done(errors.bodyTooDeep(maxJsonDepth), undefined)
      return
    }
    parseJson(request, body as string, done)
  })

  const ttl = (opts.tokenCacheSeconds ?? 30) * 1000
  const tokenCache = new Map<string, { caller: Caller | null, expires: number }>()
  const adminHash = opts.adminToken ? sha256(opts.adminToken) : null
  const authenticate = async (token: string): Promise<Caller | null> => {
    if (adminHash && safeEqual(sha256(token), adminHash)) return { scope: 'admin', subject: 'platform', tokenId: 'admin-from-environment' }
    const now = Date.now()
    const hit = tokenCache.get(token)
    if (hit && hit.expires > now) return hit.caller
    const grant = await api.registry.resolveToken(token)
    const caller = grant && { scope: grant.scope, subject: grant.subject, tokenId: grant.tokenId }
    if (tokenCache.size > 10_000) tokenCache.clear()
    // Unknown tokens are remembered briefly too, so guessing costs no query per try;
    // a token is not trusted from the cache past its own expiry.
    const until = caller ? Math.min(now + ttl, grant.expiresAt ?? Infinity) : now + 2000
    tokenCache.set(token, { caller, expires: until })
    return caller
  }

  // A revoked token stops working at once, not when its cache entry expires.
  const forgetTokens = () => tokenCache.clear()
  api.registry.on('token-revoked', forgetTokens)
  app.addHook('onClose', async () => { api.registry.off('token-revoked', forgetTokens) })

  // Latency by route pattern (bounded: one series per route, method and status), for /metrics.
  app.addHook('onResponse', (request, reply, done) => {
    api.metrics.observeHttp({ method: request.method, route: request.routeOptions.url, statusCode: reply.statusCode, seconds: reply.elapsedTime / 1000 })
    done()
  })

  const corsOrigins = new Set(opts.corsOrigins ?? [])
  if (corsOrigins.size > 0) {
    app.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin
      if (!origin || !corsOrigins.has(origin)) return
      reply.header('access-control-allow-origin', origin)
      reply.header('vary', 'origin')
      reply.header('access-control-expose-headers', 'location, retry-after')
      if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
        reply.header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE')
        reply.header('access-control-allow-headers', 'authorization, content-type')
        reply.header('access-control-max-age', '600')
        await reply.code(204).send()
      }
    })
  }

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('cache-control', 'no-store')
    // The API serves JSON (and one static HTML page, /docs): nothing in a response may run, load or be framed.
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    if (opts.https) reply.header('strict-transport-security', 'max-age=31536000')
    return payload
  })

  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, request, reply) => {
    let apiError: ApiError
    const domain = apiErrorOf(err)
    if (err instanceof ApiError) apiError = err
    else if (domain) apiError = domain
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') apiError = errors.payloadTooLarge(bodyLimit)
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') apiError = errors.unsupportedMediaType()
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      // fastify's own client errors (malformed JSON, empty body): say what it said, in our shape.
      apiError = errors.badRequest(err.message)
    } else {
      request.log.error({ err, url: request.url }, 'request failed')
      apiError = errors.internal()
    }
    if (apiError.headers) reply.headers(apiError.headers)
    reply.code(apiError.status).send({ error: { code: apiError.code, message: apiError.message } })
  })
  app.setNotFoundHandler((request, reply) => {
    const e = errors.routeNotFound(request.method, request.url)
    reply.code(e.status).send({ error: { code: e.code, message: e.message } })
  })

  let document: object | null = null
  const routes: RouteDef<any, any, any, any>[] = []
  routes.push(
    ...systemRoutes(api, () => (document ??= openApiDocument(routes, { title: 'Trellis hub API', version: 'v1' }))),
    ...accountRoutes(api),
    ...modelRoutes(api),
    ...deviceRoutes(api),
    ...credentialRoutes(api),
    ...auditRoutes(api),
    ...grantRoutes(api),
    ...insightRoutes(api),
    ...consoleSessionRoutes(api),
    ...(opts.extraRoutes?.(api) ?? []),
  )
  // Every authenticated request spends from its account's budget, before its body is parsed or its handler runs.
  registerRoutes(app, routes, async (token) => {
    const caller = await authenticate(token)
    if (caller && caller.scope !== 'admin') api.throttle.take('request', [`${caller.scope}:${caller.subject}`])
    return caller
  })
  serveConsole(app)
  return { app, routes }
}
