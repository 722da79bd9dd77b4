import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z, type ZodType } from 'zod'
import type { Scope } from '../registry/registry.js'
import { errors } from './errors.js'
import { cookieToken } from './session-cookie.js'

/** Who may call a route. Every route declares one; there is no default. */
export type Access = 'public' | 'maker' | 'owner' | 'owner-or-maker' | 'admin' | 'maker-or-admin' | 'authenticated'

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

export interface RouteDef<B = unknown, Q = unknown, P = unknown, A extends Access = Access> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** OpenAPI-style path: `/v1/devices/{id}`. */
  path: string
  summary: string
  tags: string[]
  access: A
  body?: ZodType<B>
  query?: ZodType<Q>
  params?: ZodType<P>
  /** Success status. Default 200. */
  status?: number
  /** Response schema for the OpenAPI document. */
  response?: ZodType
  handler: (ctx: RouteContext<B, Q, P, A>) => Promise<unknown>
}

/** Declares a route with typed, zod-parsed inputs and an explicit access rule. */
export function route<B = undefined, Q = undefined, P = undefined, A extends Access = Access> (def: RouteDef<B, Q, P, A>): RouteDef<B, Q, P, A> {
  return def
}

const accessScopes: Record<Exclude<Access, 'public'>, Scope[]> = {
  maker: ['maker'],
  owner: ['owner'],
  'owner-or-maker': ['owner', 'maker'],
  admin: ['admin'],
  'maker-or-admin': ['maker', 'admin'],
  authenticated: ['maker', 'owner', 'admin'],
}

const accessNames: Record<Exclude<Access, 'public'>, string> = {
  maker: 'makers (a maker token)',
  owner: 'owners (an owner token)',
  'owner-or-maker': 'owners and makers',
  admin: 'the platform admin',
  'maker-or-admin': 'makers and the platform admin',
  authenticated: 'any signed-in caller',
}

function bearer (request: FastifyRequest): string | null {
  const header = request.headers.authorization
  if (!header) return null
  const m = /^Bearer\s+(\S+)$/i.exec(header)
  return m ? m[1] : ''
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
  for (const def of defs) {
    app.route({
      method: def.method,
      url: fastifyPath(def.path),
      handler: async (request, reply) => {
        let caller: Caller | null = null
        // The console's session cookie stands in for the header (session-cookie.ts); public routes, sign-in among them, ignore it.
        const token = bearer(request) ?? (def.access === 'public' ? null : cookieToken(request))
        if (def.access !== 'public' || token) {
          if (token === null) throw errors.unauthorized()
          caller = token ? await authenticate(token) : null
          if (!caller) {
            if (def.access !== 'public') throw errors.unauthorized('the bearer token is not valid (unknown, revoked or mistyped)')
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
        // A handler that chose its status (503 from /healthz) keeps it.
        if (reply.statusCode === 200) reply.code(def.status ?? 200)
        return result
      },
    })
  }
}

/** The OpenAPI 3.1 document, derived from the same route definitions that serve requests. */
export function openApiDocument (defs: RouteDef<any, any, any, any>[], info: { title: string, version: string }): object {
  const paths: Record<string, Record<string, unknown>> = {}
  const toSchema = (schema: ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' })
  for (const def of defs) {
    const parameters: unknown[] = []
    const params = def.params ? toSchema(def.params) as { properties?: Record<string, unknown>, required?: string[] } : null
    for (const [name, schema] of Object.entries(params?.properties ?? {})) parameters.push({ name, in: 'path', required: true, schema })
    const query = def.query ? toSchema(def.query) as { properties?: Record<string, unknown>, required?: string[] } : null
    for (const [name, schema] of Object.entries(query?.properties ?? {})) {
      parameters.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema })
    }
    const status = String(def.status ?? 200)
    const operation: Record<string, unknown> = {
      summary: def.summary,
      tags: def.tags,
      'x-access': def.access,
      security: def.access === 'public' ? [] : [{ bearer: [] }],
      parameters,
      responses: {
        [status]: { description: 'success', ...(def.response && { content: { 'application/json': { schema: z.toJSONSchema(def.response, { unrepresentable: 'any' }) } } }) },
        default: { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    }
    if (def.body) operation.requestBody = { required: true, content: { 'application/json': { schema: toSchema(def.body) } } }
    ;(paths[def.path] ??= {})[def.method.toLowerCase()] = operation
  }
  return {
    openapi: '3.1.0',
    info,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
        },
      },
    },
    paths,
  }
}
