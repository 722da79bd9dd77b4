import { z } from 'zod'
import { EmailTakenError } from '../../registry/registry.js'
import { errors } from '../errors.js'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'

export const MakerSignup = z.strictObject({ name: z.string().trim().min(1).max(100) })
export type MakerSignup = z.infer<typeof MakerSignup>

export const OwnerSignup = z.strictObject({
  email: z.email().max(254),
  password: z.string().min(10, 'a password needs at least 10 characters').max(256),
})
export type OwnerSignup = z.infer<typeof OwnerSignup>

export const Login = z.strictObject({ email: z.string().max(254), password: z.string().max(256) })
export type Login = z.infer<typeof Login>

const TokenAnswer = z.object({ id: z.string(), token: z.string() })

export function accountRoutes (api: ApiContext) {
  return [
    route({
      method: 'POST',
      path: '/v1/makers',
      summary: 'Register a maker; the API token is shown once',
      tags: ['makers'],
      access: 'public',
      body: MakerSignup,
      status: 201,
      response: TokenAnswer.extend({ name: z.string() }),
      handler: async ({ body, request }) => {
        api.throttle.take('signup', [request.ip])
        const { maker, token } = await api.registry.createMaker(body.name)
        api.log.info({ makerId: maker.id }, 'maker registered')
        return { id: maker.id, name: maker.name, token }
      },
    }),
    route({
      method: 'POST',
      path: '/v1/owners',
      summary: 'Sign up as an owner; returns a session token',
      tags: ['owners'],
      access: 'public',
      body: OwnerSignup,
      status: 201,
      response: TokenAnswer,
      handler: async ({ body, request }) => {
        api.throttle.take('signup', [request.ip])
        try {
          const { owner, token } = await api.registry.createOwner(body.email, body.password)
          return { id: owner.id, email: owner.email, token }
        } catch (err) {
          if (err instanceof EmailTakenError) throw errors.emailTaken()
          throw err
        }
      },
    }),
    route({
      method: 'POST',
      path: '/v1/sessions',
      summary: 'Log in as an owner; returns a new session token',
      tags: ['owners'],
      access: 'public',
      body: Login,
      response: TokenAnswer,
      handler: async ({ body, request }) => {
        const keys = [request.ip, `email:${body.email.toLowerCase()}`]
        api.throttle.check('failedLogin', keys)
        const session = await api.registry.login(body.email, body.password)
        if (!session) {
          api.throttle.spend('failedLogin', keys)
          api.audit.record({ actor: 'anonymous', action: 'login-failed', address: request.ip, detail: `failed login for ${body.email.slice(0, 254)}` })
          throw errors.invalidCredentials()
        }
        return { id: session.owner.id, token: session.token }
      },
    }),
  ]
}
