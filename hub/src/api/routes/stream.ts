import { z } from 'zod'
import { route } from '../route.js'
import type { LiveStreams } from '../../stream/live.js'

export function streamRoutes (streams: LiveStreams) {
  return [
    route({
      method: 'GET',
      path: '/v1/stream',
      operationId: 'openStream',
      summary: "Server-Sent Events of the owner's devices: `state`, `presence` and `command` changes, `: heartbeat` comments, and `close` when the hub stops or the stream's token is revoked",
      tags: ['stream'],
      access: 'owner',
      response: z.string(),
      produces: 'text/event-stream',
      errors: ['TOO_MANY_STREAMS'],
      handler: async ({ caller, reply }) => {
        streams.open(caller.subject, reply.raw, { 'x-content-type-options': 'nosniff' }, caller.tokenId)
        reply.hijack()
        return reply
      },
    }),
  ]
}
