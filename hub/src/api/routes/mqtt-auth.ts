import { createHash, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { isDeviceId } from '@trellis/device-sdk'
import { route } from '../route.js'
import { errors } from '../errors.js'
import type { ApiContext } from '../context.js'

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
      summary: 'Checks a device\'s MQTT credentials, for the broker (service secret as bearer token)',
      tags: ['internal'],
      // Not a registry token: the service secret, checked in the handler.
      access: 'public',
      body: MqttAuthRequest,
      response: z.object({ result: z.enum(['allow', 'deny']) }),
      handler: async ({ body, request }) => {
        const presented = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
        if (!presented || !timingSafeEqual(sha256(presented), serviceHash)) throw errors.unauthorized('this route needs the service secret as bearer token')
        // The broker's rule: a device connects with its id as both client id and username.
        const allowed = body.clientId === body.username && isDeviceId(body.username) && await api.directory.authenticate(body.username, body.password)
        return { result: allowed ? 'allow' : 'deny' }
      },
    }),
  ]
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}
