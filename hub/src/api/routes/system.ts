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
        const status = influx ? 'ok' : 'degraded'
        if (!influx) reply.code(503)
        return { status, influx: influx ? 'up' : 'down', bufferedPoints: buffered, failedWrites: failedRequests }
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
