import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z, type ZodType } from 'zod'
import type { Scope } from '../registry/registry.js'
import { bearerToken } from '../crypto.js'
import { errors, errorStatus, type ErrorCode } from './errors.js'
import { cookieToken } from './session-cookie.js'

/** Who may call a route. Every route declares one; there is no default. */
export type Access = 'public' | 'maker' | 'owner' | 'owner-or-maker' | 'owner-or-grantee' | 'admin' | 'maker-or-admin' | 'authenticated'

export interface Caller { scope: Scope, subject: string, tokenId: string }

export type Authenticate = (token: string) => Promise<Caller | null>

export interface RouteContext<B, Q, P, A extends Access> {
  body: B
  query: Q
  params: P
  caller: A extends 'public' ? Caller | null : Caller
  request: FastifyRequest
  reply: FastifyReply
}

export type MediaType = 'application/json' | 'text/plain' | 'text/html' | 'text/event-stream'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers with an event stream (it produces `text/event-stream`): it stays open, no answer is awaited. */
    eventStream?: boolean
  }
}

export interface RouteDef<B = unknown, Q = unknown, P = unknown, A extends Access = Access> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** OpenAPI-style path: `/v1/devices/{id}`. */
  path: string
  /** The operation's name in /docs, unique, camelCase: `getDevice`. */
  operationId: string
  summary: string
  tags: string[]
  access: A
  body?: ZodType<B>
  query?: ZodType<Q>
  params?: ZodType<P>
  /** Success status. Default 200. */
  status?: number
  /** Other statuses answered with the success schema (a command still pending: 202). Default none. */
  statuses?: number[]
  /**
   * The success answer. A JSON answer is parsed through it before it is sent,
   * so fields it does not declare never leave; one that does not fit it is a
   * 500, logged. `z.null()` with status 204 for no body.
   */
  response: ZodType
  /** Media types of the success answer, by the request's Accept where several. Default application/json. */
  produces?: MediaType | MediaType[]
  /**
   * Codes from the error catalogue the handler answers with. Those the
   * wrapper gives (invalid input, 401/403, 429 for the account's request limit, body limits, 500) are added.
   */
  errors?: readonly ErrorCode[]
  handler: (ctx: RouteContext<B, Q, P, A>) => Promise<unknown>
}

/** Declares a route with typed, zod-parsed inputs, an explicit access rule and its answers. */
export function route<B = undefined, Q = undefined, P = undefined, A extends Access = Access> (def: RouteDef<B, Q, P, A>): RouteDef<B, Q, P, A> {
  return def
}

const accessScopes: Record<Exclude<Access, 'public'>, Scope[]> = {
  maker: ['maker'],
  owner: ['owner'],
  'owner-or-maker': ['owner', 'maker'],
  'owner-or-grantee': ['owner', 'maker', 'app'],
  admin: ['admin'],
  'maker-or-admin': ['maker', 'admin'],
  authenticated: ['maker', 'owner', 'admin'],
}

const accessNames: Record<Exclude<Access, 'public'>, string> = {
  maker: 'makers (a maker token)',
  owner: 'owners (an owner token)',
  'owner-or-maker': 'owners and makers',
  'owner-or-grantee': 'owners, and makers and apps under their grants',
  admin: 'the platform admin',
  'maker-or-admin': 'makers and the platform admin',
  authenticated: 'any signed-in caller',
}

/** Every error code a route can answer with: its own and those the wrapper gives. */
export function errorCodesOf (def: RouteDef<any, any, any, any>): ErrorCode[] {
  const codes = new Set<ErrorCode>(def.errors ?? [])
  codes.add('INTERNAL')
  if (def.params || def.query) codes.add('INVALID_REQUEST')
  if (def.body) for (const c of ['INVALID_BODY', 'BAD_REQUEST', 'BODY_TOO_DEEP', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const) codes.add(c)
  if (def.access !== 'public') {
    codes.add('UNAUTHORIZED')
    codes.add('RATE_LIMITED')
    if (def.access !== 'authenticated') codes.add('FORBIDDEN')
  }
  return [...codes]
}

function mediaTypes (def: RouteDef<any, any, any, any>): MediaType[] {
  const p = def.produces ?? 'application/json'
  return Array.isArray(p) ? p : [p]
}

/** `/v1/models/{id}/mapping:test` → `/v1/models/:id/mapping::test` */
export function fastifyPath (path: string): string {
  return path.replace(/:/g, '::').replace(/\{(\w+)\}/g, ':$1')
}

function parse<T> (schema: ZodType<T> | undefined, value: unknown, where: 'body' | 'query' | 'params'): T {
  if (!schema) return undefined as T
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (!result.success) throw errors.invalid(where, result.error)
  return result.data
}

export function registerRoutes (app: FastifyInstance, defs: RouteDef<any, any, any, any>[], authenticate: Authenticate): void {
  const seen = new Set<string>()
  for (const def of defs) {
    if (seen.has(def.operationId)) throw new Error(`two routes share the operationId ${def.operationId}`)
    seen.add(def.operationId)
    const json = mediaTypes(def).includes('application/json')
    app.route({
      method: def.method,
      url: fastifyPath(def.path),
      config: { eventStream: mediaTypes(def).includes('text/event-stream') },
      handler: async (request, reply) => {
        let caller: Caller | null = null
        // The console's session cookie stands in for the header (session-cookie.ts); public routes, sign-in among them, ignore it.
        const token = bearerToken(request.headers.authorization) ?? (def.access === 'public' ? null : cookieToken(request))
        if (def.access !== 'public' || token) {
          if (token === null) throw errors.unauthorized()
          caller = token ? await authenticate(token) : null
          if (!caller) {
            if (def.access !== 'public') throw errors.unauthorized('the bearer token is not valid (unknown, revoked, expired or mistyped)')
          } else if (def.access !== 'public' && !accessScopes[def.access as Exclude<Access, 'public'>].includes(caller.scope)) {
            throw errors.forbidden(accessNames[def.access as Exclude<Access, 'public'>])
          }
        }
        const ctx: RouteContext<unknown, unknown, unknown, Access> = {
          params: parse(def.params, request.params, 'params'),
          query: parse(def.query, request.query, 'query'),
          body: parse(def.body, request.body, 'body'),
          caller: caller as Caller,
          request,
          reply,
        }
        const result = await def.handler(ctx)
        if (reply.sent) return reply
        // A handler that chose its status (503 from /healthz, 202 for a pending command) keeps it.
        if (reply.statusCode === 200) reply.code(def.status ?? 200)
        // A handler that chose another media type (HTML /docs for a browser) answers as it is.
        if (!json || (reply.getHeader('content-type') !== undefined && !String(reply.getHeader('content-type')).startsWith('application/json'))) return result
        const answer = def.response.safeParse(result)
        if (!answer.success) {
          request.log.error({ route: def.operationId, issues: answer.error.issues.slice(0, 5) }, 'an answer does not fit its declared schema')
          throw errors.internal()
        }
        return answer.data
      },
    })
  }
}

const errorSchema = (codes: string[]) => ({
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: { type: 'string', enum: codes }, message: { type: 'string' } },
    },
  },
})

/** The OpenAPI 3.1 document, derived from the same route definitions that serve requests. */
export function openApiDocument (defs: RouteDef<any, any, any, any>[], info: { title: string, version: string }): object {
  const paths: Record<string, Record<string, unknown>> = {}
  const toSchema = (schema: ZodType, io: 'input' | 'output') => {
    const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>
    delete s.$schema
    return s
  }
  for (const def of defs) {
    const parameters: unknown[] = []
    const params = def.params ? toSchema(def.params, 'input') as { properties?: Record<string, unknown>, required?: string[] } : null
    for (const [name, schema] of Object.entries(params?.properties ?? {})) parameters.push({ name, in: 'path', required: true, schema })
    const query = def.query ? toSchema(def.query, 'input') as { properties?: Record<string, unknown>, required?: string[] } : null
    for (const [name, schema] of Object.entries(query?.properties ?? {})) {
      parameters.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema })
    }
    const responses: Record<string, unknown> = {}
    const content = Object.fromEntries(mediaTypes(def).map((type) => [type, { schema: type === 'application/json' ? toSchema(def.response, 'output') : { type: 'string' } }]))
    for (const status of [def.status ?? 200, ...(def.statuses ?? [])]) {
      responses[String(status)] = status === 204 ? { description: 'success, no body' } : { description: 'success', content }
    }
    const byStatus = new Map<number, string[]>()
    for (const code of errorCodesOf(def)) {
      const status = errorStatus[code]
      byStatus.set(status, [...(byStatus.get(status) ?? []), code])
    }
    for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] = { description: codes.join(', '), content: { 'application/json': { schema: errorSchema(codes) } } }
    }
    const operation: Record<string, unknown> = {
      operationId: def.operationId,
      summary: def.summary,
      tags: def.tags,
      'x-access': def.access,
      security: def.access === 'public' ? [] : [{ bearer: [] }],
      parameters,
      responses,
    }
    if (def.body) operation.requestBody = { required: true, content: { 'application/json': { schema: toSchema(def.body, 'input') } } }
    ;(paths[def.path] ??= {})[def.method.toLowerCase()] = operation
  }
  return {
    openapi: '3.1.0',
    info,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: errorSchema(Object.keys(errorStatus)) },
    },
    paths,
  }
}
