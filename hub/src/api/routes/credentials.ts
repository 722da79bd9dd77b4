import { z } from 'zod'
import { errors } from '../errors.js'
import { route } from '../route.js'
import { actorOf, visibleDevice, type ApiContext } from '../context.js'
import { IdParams } from '../params.js'

const TokenView = z.object({ id: z.string(), scope: z.enum(['maker', 'owner', 'admin']), label: z.string().nullable(), createdAt: z.string(), expiresAt: z.string().nullable(), revokedAt: z.string().nullable() })

/** Device secrets, device enablement, device release, and API tokens. */
export function credentialRoutes (api: ApiContext) {
  return [
    route({
      method: 'POST',
      path: '/v1/devices/{id}/secret:rotate',
      operationId: 'rotateDeviceSecret',
      summary: 'Give a device a new secret, shown once; the old one stops working and live sessions are closed',
      tags: ['devices'],
      access: 'maker',
      params: IdParams,
      response: z.object({ id: z.string(), secret: z.string() }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller, request }) => {
        const device = await visibleDevice(api, caller, params.id, ['maker'])
        const secret = await api.registry.rotateDeviceSecret(device.id)
        if (!secret) throw errors.notFound('device', params.id)
        api.audit.record({ actor: actorOf(caller), action: 'secret-rotated', deviceId: device.id, address: request.ip, detail: 'device secret rotated; sessions closed' })
        return { id: device.id, secret }
      },
    }),
    ...([true, false] as const).map((disabled) => route({
      method: 'POST',
      path: disabled ? '/v1/devices/{id}/disable' : '/v1/devices/{id}/enable',
      operationId: disabled ? 'disableDevice' : 'enableDevice',
      summary: disabled ? 'Disable a device: it can no longer connect, and live sessions are closed' : 'Enable a disabled device again',
      tags: ['devices'],
      access: 'maker',
      params: IdParams,
      response: z.object({ id: z.string(), disabled: z.boolean() }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller, request }) => {
        const device = await visibleDevice(api, caller, params.id, ['maker'])
        await api.registry.setDeviceDisabled(device.id, disabled)
        const action = disabled ? 'device-disabled' : 'device-enabled'
        api.audit.record({ actor: actorOf(caller), action, deviceId: device.id, address: request.ip, detail: disabled ? 'device disabled' : 'device enabled' })
        return { id: device.id, disabled }
      },
    })),
    route({
      method: 'POST',
      path: '/v1/devices/{id}/release',
      operationId: 'releaseDevice',
      summary: 'Give up a device; it gets a new claim code, shown once, for its next owner',
      tags: ['devices'],
      access: 'owner',
      params: IdParams,
      response: z.object({ id: z.string(), claimCode: z.string() }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller, request }) => {
        const device = await visibleDevice(api, caller, params.id, ['owner'])
        const released = await api.registry.releaseDevice(caller.subject, device.id)
        if (!released) throw errors.notFound('device', params.id)
        api.audit.record({ actor: actorOf(caller), action: 'device-released', deviceId: device.id, address: request.ip, detail: 'released by its owner; new claim code issued' })
        return { id: device.id, claimCode: released.claimCode }
      },
    }),
    route({
      method: 'GET',
      path: '/v1/tokens',
      operationId: 'listTokens',
      summary: "The caller's API tokens (never the tokens themselves)",
      tags: ['tokens'],
      access: 'authenticated',
      response: z.object({ tokens: z.array(TokenView) }),
      handler: async ({ caller }) => ({ tokens: await api.registry.listTokens(caller.subject) }),
    }),
    route({
      method: 'DELETE',
      path: '/v1/tokens/{id}',
      operationId: 'revokeToken',
      summary: "Revoke one of the caller's tokens (the platform admin: anyone's); it stops working at once",
      tags: ['tokens'],
      access: 'authenticated',
      params: IdParams,
      response: z.object({ id: z.string(), revoked: z.literal(true) }),
      errors: ['NOT_FOUND'],
      handler: async ({ params, caller, request }) => {
        const ok = await api.registry.revokeToken(params.id, caller.scope === 'admin' ? null : caller.subject)
        if (!ok) throw errors.notFound('token', params.id)
        api.audit.record({ actor: actorOf(caller), action: 'token-revoked', address: request.ip, detail: `token ${params.id} revoked` })
        return { id: params.id, revoked: true }
      },
    }),
  ]
}
