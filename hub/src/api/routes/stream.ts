import { errors } from '../errors.js'
import { route } from '../route.js'
import { StreamLimitError, type LiveStreams } from '../../stream/live.js'

export function streamRoutes (streams: LiveStreams) {
  return [
    route({
      method: 'GET',
      path: '/v1/stream',
      summary: "Server-Sent Events of the owner's devices: `state`, `presence` and `command` changes, `: heartbeat` comments, and `close` when the hub stops or the stream's token is revoked",
      tags: ['stream'],
      access: 'owner',
      handler: async ({ caller, reply }) => {
        try {
          streams.open(caller.subject, reply.raw, { 'x-content-type-options': 'nosniff' }, caller.tokenId)
        } catch (err) {
          if (err instanceof StreamLimitError) throw errors.tooManyStreams(err.limit)
          throw err
        }
        reply.hijack()
        return reply
      },
    }),
  ]
}
