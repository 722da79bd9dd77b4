import { route } from '../route.js'
import type { ApiContext } from '../context.js'

export function systemRoutes (api: ApiContext, openapi: () => object) {
  return [
    route({
      method: 'GET',
      path: '/healthz',
      summary: 'Liveness and storage health',
      tags: ['system'],
      access: 'public',
      handler: async ({ reply }) => {
        const influx = await api.store.ping(1000).catch(() => false)
        const { buffered, failedRequests } = api.writer.stats
        const spool = api.writer.spoolDepth
        // Spooling, or replaying the spool after an outage or a restart: history is not current yet.
        const current = influx && !api.writer.degraded && spool.points === 0
        // InfluxDB refusing the hub's credentials is a configuration error that no retry fixes.
        const configError = api.writer.configError
        if (!influx || configError) reply.code(503)
        return {
          status: configError ? 'misconfigured' : current ? 'ok' : 'degraded',
          influx: influx ? 'up' : 'down',
          ...(configError && { influxProblem: configError }),
          bufferedPoints: buffered,
          failedWrites: failedRequests,
          spool: { points: spool.points, bytes: spool.bytes, segments: spool.segments },
        }
      },
    }),
    route({
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics (text format)',
      tags: ['system'],
      access: 'public',
      handler: async ({ reply }) => {
        reply.header('content-type', api.metrics.registry.contentType)
        return await api.metrics.registry.metrics()
      },
    }),
    route({
      method: 'GET',
      path: '/docs',
      summary: 'This OpenAPI document',
      tags: ['system'],
      access: 'public',
      handler: async () => openapi(),
    }),
  ]
}
