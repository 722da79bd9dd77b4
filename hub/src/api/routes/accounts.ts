import { z } from 'zod'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { actorOf, type ApiContext } from '../context.js'

export const MakerSignup = z.strictObject({ name: z.string().trim().min(1).max(100) })
export type MakerSignup = z.infer<typeof MakerSignup>

export const OwnerSignup = z.strictObject({
  email: z.email().max(254),
  password: z.string().min(10, 'a password needs at least 10 characters').max(256),
})
export type OwnerSignup = z.infer<typeof OwnerSignup>

export const Login = z.strictObject({ email: z.string().max(254), password: z.string().max(256) })
export type Login = z.infer<typeof Login>

/** A new API token, shown once, and when it stops working (null: never). */
const TokenAnswer = z.object({ id: z.string(), token: z.string(), expiresAt: z.string().nullable() })

export function accountRoutes (api: ApiContext) {
  const signup = (address: string) => {
    api.throttle.check('signup', [address])
    api.throttle.check('signupTotal', ['all'])
    void api.throttle.spend('signup', [address])
    void api.throttle.spend('signupTotal', ['all'])
  }
  return [
    route({
      method: 'POST',
      path: '/v1/makers',
      operationId: 'createMaker',
      summary: 'Register a maker; the API token is shown once',
      tags: ['makers'],
      access: 'public',
      body: MakerSignup,
      status: 201,
      response: TokenAnswer.extend({ name: z.string() }),
      errors: ['RATE_LIMITED'],
      handler: async ({ body, request }) => {
        signup(request.ip)
        const { maker, token, expiresAt } = await api.registry.createMaker(body.name, api.tokens)
        api.log.info({ makerId: maker.id }, 'maker registered')
        return { id: maker.id, name: maker.name, token, expiresAt }
      },
    }),
    route({
      method: 'POST',
      path: '/v1/owners',
      operationId: 'createOwner',
      summary: 'Sign up as an owner; returns a session token',
      tags: ['owners'],
      access: 'public',
      body: OwnerSignup,
      status: 201,
      response: TokenAnswer.extend({ email: z.string() }),
      errors: ['EMAIL_TAKEN', 'RATE_LIMITED'],
      handler: async ({ body, request }) => {
        signup(request.ip)
        const { owner, token, expiresAt } = await api.registry.createOwner(body.email, body.password, api.tokens)
        return { id: owner.id, email: owner.email, token, expiresAt }
      },
    }),
    route({
      method: 'POST',
      path: '/v1/sessions',
      operationId: 'login',
      summary: 'Log in as an owner; returns a new session token',
      tags: ['owners'],
      access: 'public',
      body: Login,
      response: TokenAnswer,
      errors: ['INVALID_CREDENTIALS', 'RATE_LIMITED'],
      handler: async ({ body, request }) => {
        // Failures count per address and per address and account: a stranger's wrong
        // passwords use up the stranger's budget, never the owner's.
        const account = `${request.ip} ${body.email.toLowerCase()}`
        api.throttle.check('failedLoginPerAddress', [request.ip])
        api.throttle.check('failedLogin', [account])
        const session = await api.registry.login(body.email, body.password, api.tokens)
        if (!session) {
          api.audit.record({ actor: 'anonymous', action: 'login-failed', address: request.ip, detail: `failed login for ${body.email.slice(0, 254)}` })
          // Answered once the other nodes of a cluster know of the failure: a guesser's next try at another node counts it.
          await Promise.all([api.throttle.spend('failedLoginPerAddress', [request.ip]), api.throttle.spend('failedLogin', [account])])
          throw errors.invalidCredentials()
        }
        return { id: session.owner.id, token: session.token, expiresAt: session.expiresAt }
      },
    }),
    route({
      method: 'POST',
      path: '/v1/sessions:refresh',
      operationId: 'refreshToken',
      summary: 'Trade the token in the Authorization header for a new one with a fresh lifetime; the old one stops working at once',
      tags: ['tokens'],
      access: 'owner-or-maker',
      response: TokenAnswer,
      handler: async ({ caller, request }) => {
        const fresh = await api.registry.issueToken(caller.scope, caller.subject, 'refreshed', api.tokens)
        await api.registry.revokeToken(caller.tokenId, caller.subject)
        api.audit.record({ actor: actorOf(caller), action: 'token-revoked', address: request.ip, detail: `token ${caller.tokenId} replaced by ${fresh.id}` })
        return { id: caller.subject, token: fresh.token, expiresAt: fresh.expiresAt }
      },
    }),
  ]
}
