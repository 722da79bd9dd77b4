import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { ApiError, errors } from './errors.js'
import { openApiDocument, registerRoutes, type Caller, type RouteDef } from './route.js'
import type { ApiContext } from './context.js'
import { systemRoutes } from './routes/system.js'
import { accountRoutes } from './routes/accounts.js'
import { modelRoutes } from './routes/models.js'
import { deviceRoutes } from './routes/devices.js'
import { credentialRoutes } from './routes/credentials.js'
import { auditRoutes } from './routes/audit.js'
import { RequestThrottle, type ApiRateLimits } from './throttle.js'

export interface ApiOptions {
  /** Largest request body in bytes. Default 1 MiB. */
  bodyLimit?: number
  /** Seconds a resolved token is trusted before the registry is asked again. Default 30. */
  tokenCacheSeconds?: number
  /**
   * The platform admin's bearer token (`main.ts` reads it from TRELLIS_ADMIN_TOKEN).
   * Default: none, so no caller is admin.
   */
  adminToken?: string
  /** PEM certificate and key: serve HTTPS. Default: plain HTTP. */
  https?: { cert: string | Buffer, key: string | Buffer }
  /** Rate limits on sign-up, login and claim. Defaults in `ApiRateLimits`. */
  rateLimits?: ApiRateLimits
  /** More routes (from other modules) to serve and document. */
  extraRoutes?: (api: ApiContext) => RouteDef<any, any, any, any>[]
}

export interface Api {
  app: FastifyInstance
  routes: RouteDef<any, any, any, any>[]
  /** Forgets cached token grants (after a revocation). */
  forgetTokens (): void
}

export function buildApi (context: Omit<ApiContext, 'throttle'>, logger: Logger, opts: ApiOptions = {}): Api {
  const api: ApiContext = { ...context, throttle: new RequestThrottle(opts.rateLimits) }
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024
  const app = Fastify({
    ...(opts.https && { https: { cert: opts.https.cert, key: opts.https.key } }),
    loggerInstance: logger.child({ component: 'api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // A client gets 30 s to send its whole request, so slow senders cannot hold sockets open (Node's default: 300 s).
    requestTimeout: 30_000,
    // Our route helper parses with zod; fastify's own validation is not used.
    ajv: { customOptions: { coerceTypes: false } },
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
    // Unknown tokens are remembered briefly too, so guessing costs no query per try.
    tokenCache.set(token, { caller, expires: now + (caller ? ttl : 2000) })
    return caller
  }

  // A revoked token stops working at once, not when its cache entry expires.
  api.registry.on('token-revoked', () => tokenCache.clear())

  // Latency by route pattern (bounded: one series per route, method and status), for /metrics.
  app.addHook('onResponse', (request, reply, done) => {
    api.metrics.observeHttp({ method: request.method, route: request.routeOptions.url, statusCode: reply.statusCode, seconds: reply.elapsedTime / 1000 })
    done()
  })

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('cache-control', 'no-store')
    // The API serves JSON only: nothing in a response may run, load or be framed.
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    if (opts.https) reply.header('strict-transport-security', 'max-age=31536000')
    return payload
  })

  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, request, reply) => {
    let apiError: ApiError
    if (err instanceof ApiError) apiError = err
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') apiError = errors.payloadTooLarge(bodyLimit)
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') apiError = errors.unsupportedMediaType()
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      // fastify's own client errors (malformed JSON, empty body): say what it said, in our shape.
      apiError = new ApiError(err.statusCode, err.statusCode === 400 ? 'BAD_REQUEST' : 'CLIENT_ERROR', err.message)
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
    ...(opts.extraRoutes?.(api) ?? []),
  )
  registerRoutes(app, routes, authenticate)
  return { app, routes, forgetTokens: () => tokenCache.clear() }
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function safeEqual (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
