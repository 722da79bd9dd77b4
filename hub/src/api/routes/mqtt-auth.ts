import { z } from 'zod'
import { isDeviceId } from '@trellis/device-sdk'
import { route } from '../route.js'
import { errors } from '../errors.js'
import type { ApiContext } from '../context.js'
import { bearerToken, safeEqual, sha256 } from '../../crypto.js'

const MqttAuthRequest = z.object({
  clientId: z.string().max(65_535),
  username: z.string().max(65_535),
  password: z.string().max(65_535),
})

/**
 * Device authentication for a broker that runs apart from the hub (ours in
 * another process, or an existing cluster's HTTP auth hook): the registry
 * holds the device secrets, so the broker asks here. Only a caller with the
 * service secret may ask, since an answer tells whether a secret is right.
 */
export function mqttAuthRoutes (api: ApiContext, serviceSecret: string) {
  const serviceHash = sha256(serviceSecret)
  return [
    route({
      method: 'POST',
      path: '/internal/mqtt/auth',
      operationId: 'checkMqttCredentials',
      summary: 'Checks a device\'s MQTT credentials, for the broker (service secret as bearer token)',
      tags: ['internal'],
      // Not a registry token: the service secret, checked in the handler.
      access: 'public',
      body: MqttAuthRequest,
      response: z.object({ result: z.enum(['allow', 'deny']) }),
      errors: ['UNAUTHORIZED'],
      handler: async ({ body, request }) => {
        const presented = bearerToken(request.headers.authorization)
        if (!presented || !safeEqual(sha256(presented), serviceHash)) throw errors.unauthorized('this route needs the service secret as bearer token')
        // The broker's rule: a device connects with its id as both client id and username.
        const allowed = body.clientId === body.username && isDeviceId(body.username) && await api.directory.authenticate(body.username, body.password)
        return { result: allowed ? 'allow' : 'deny' }
      },
    }),
  ]
}
