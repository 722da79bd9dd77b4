import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { z } from 'zod'
import { actionsOf } from '@trellis/device-sdk'
import { errors } from './errors.js'
import { route } from './route.js'
import { IdParams } from './params.js'
import { visibleDevice, type ApiContext } from './context.js'
import { csrfTokenFor, readCookies, sessionCookieName, setSessionCookie } from './session-cookie.js'

/** Where `npm run build:console` writes the console (console/build.ts). */
// From hub/src/api (the sources) or hub/dist/src/api (the build), the repository root holds console/.
export const defaultConsoleDir = fileURLToPath(new URL(import.meta.url.includes('/hub/dist/') ? '../../../../console/dist/' : '../../../console/dist/', import.meta.url))

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
}

// The console loads its own script and styles and talks to this origin only.
const consolePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/**
 * Serves the browser console: `/` is its page, `/console/<file>` its script
 * and styles, read from `dir` on each request so that a rebuild needs no
 * restart. The page routes with the URL's fragment (`/#/devices/dv_…`), so
 * no other path is served.
 */
export function serveConsole (app: FastifyInstance, dir = defaultConsoleDir): void {
  const send = async (reply: FastifyReply, file: string) => {
    let body: Buffer
    try {
      body = await readFile(path.join(dir, file))
    } catch {
      if (file !== 'index.html') throw errors.notFound('console file', file)
      return await reply.code(503).type('text/plain; charset=utf-8')
        .send('The console is not built. Run "npm run build:console" (npm start and npm test do it for you), then reload.')
    }
    return await reply.type(contentTypes[path.extname(file)] ?? 'application/octet-stream').send(body)
  }
  // Route-level onSend runs after the API's, which forbids every source.
  const onSend = async (_request: unknown, reply: FastifyReply, payload: unknown) => {
    reply.header('content-security-policy', consolePolicy)
    return payload
  }
  app.get('/', { onSend }, async (_request, reply) => await send(reply, 'index.html'))
  app.get<{ Params: { file: string } }>('/console/:file', { onSend }, async (request, reply) => {
    const file = request.params.file
    if (!/^[\w-]+(\.[\w-]+)*$/.test(file) || file.length > 64) throw errors.notFound('console file', file)
    return await send(reply, file)
  })
}

export const ConsoleSignIn = z.union([
  z.strictObject({ email: z.string().max(254), password: z.string().max(256) }),
  /** A maker's (or owner's) API token, exchanged for a console session of its own. */
  z.strictObject({ token: z.string().min(1).max(256) }),
])
export type ConsoleSignIn = z.infer<typeof ConsoleSignIn>

const SessionView = z.object({ scope: z.enum(['owner', 'maker', 'admin']), subject: z.string(), csrf: z.string().nullable() })

/** Sign-in, who-am-I and sign-out for the browser console, and what an owner's device offers. */
export function consoleSessionRoutes (api: ApiContext) {
  return [
    route({
      method: 'POST',
      path: '/v1/console/session',
      operationId: 'consoleSignIn',
      summary: 'Sign in to the console (owner email and password, or a maker token): sets an HttpOnly, SameSite=Strict session cookie and returns the CSRF token for the x-csrf-token header',
      tags: ['console'],
      access: 'public',
      body: ConsoleSignIn,
      status: 201,
      response: SessionView,
      errors: ['INVALID_CREDENTIALS', 'UNAUTHORIZED', 'RATE_LIMITED'],
      handler: async ({ body, request, reply }) => {
        // As POST /v1/sessions: failures count per address and per address and account, never per account alone.
        const account = 'email' in body ? `${request.ip} ${body.email.toLowerCase()}` : null
        api.throttle.check('failedLoginPerAddress', [request.ip])
        if (account) api.throttle.check('failedLogin', [account])
        let session: { scope: 'owner' | 'maker', subject: string, token: string } | null = null
        if ('email' in body) {
          const login = await api.registry.login(body.email, body.password, api.tokens)
          if (login) session = { scope: 'owner', subject: login.owner.id, token: login.token }
        } else {
          const grant = await api.registry.resolveToken(body.token)
          // The console gets a token of its own, so signing out leaves the pasted one working.
          // An app's token is an API client's, not a person's: no console session for it.
          if (grant && (grant.scope === 'owner' || grant.scope === 'maker')) session = { scope: grant.scope, subject: grant.subject, token: (await api.registry.issueToken(grant.scope, grant.subject, 'console session', api.tokens)).token }
        }
        if (!session) {
          api.audit.record({ actor: 'anonymous', action: 'login-failed', address: request.ip, detail: 'failed console sign-in' })
          // As the API's login: answered once the other nodes know of the failure.
          await Promise.all([api.throttle.spend('failedLoginPerAddress', [request.ip]), account && api.throttle.spend('failedLogin', [account])])
          throw 'email' in body ? errors.invalidCredentials() : errors.unauthorized('this token is not a valid maker or owner token (unknown, revoked or mistyped)')
        }
        setSessionCookie(request, reply, session.token)
        return { scope: session.scope, subject: session.subject, csrf: csrfTokenFor(session.token) }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/console/session',
      operationId: 'consoleSession',
      summary: 'Who is signed in, and the CSRF token of the session cookie (null for a bearer token)',
      tags: ['console'],
      access: 'authenticated',
      response: SessionView,
      handler: async ({ caller, request }) => {
        const token = readCookies(request.headers.cookie).get(sessionCookieName)
        const byCookie = !request.headers.authorization && token
        return { scope: caller.scope, subject: caller.subject, csrf: byCookie ? csrfTokenFor(token) : null }
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/console/session',
      operationId: 'consoleSignOut',
      summary: "Sign out of the console: revokes the session cookie's token at once (open live streams end) and clears the cookie",
      tags: ['console'],
      access: 'authenticated',
      response: z.object({ signedOut: z.literal(true) }),
      errors: ['BAD_REQUEST'],
      handler: async ({ caller, request, reply }) => {
        // A bearer token is not a console session: revoking it is DELETE /v1/tokens/{id}'s job, asked for by name.
        if (request.headers.authorization) throw errors.badRequest('this signs a console session out (its cookie); revoke an API token with DELETE /v1/tokens/{id}')
        await api.registry.revokeToken(caller.tokenId, caller.subject)
        setSessionCookie(request, reply, null)
        return { signedOut: true as const }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/devices/{id}/capabilities',
      operationId: 'getDeviceCapabilities',
      summary: "What the owner's device reports and accepts: its model's capabilities (kind, unit, range, enum, settable) and actions",
      tags: ['devices'],
      access: 'owner-or-maker',
      params: IdParams,
      response: z.object({ device: z.string(), model: z.string(), capabilities: z.array(z.record(z.string(), z.unknown())), actions: z.array(z.string()) }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller }) => {
        const ctx = await visibleDevice(api, caller, params.id)
        const capabilities = [...ctx.model.capabilities.values()]
        return { device: ctx.id, model: ctx.model.id, capabilities, actions: actionsOf(ctx.model.capabilities.keys()) }
      },
    }),
  ]
}
