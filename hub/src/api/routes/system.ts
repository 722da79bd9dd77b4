import { z } from 'zod'
import { route } from '../route.js'
import type { ApiContext } from '../context.js'
import { docsPage } from '../docs-ui.js'

const Health = z.object({
  /** `misconfigured`: InfluxDB refuses the hub's credentials, which no retry fixes. */
  status: z.enum(['ok', 'degraded', 'misconfigured']),
  influx: z.enum(['up', 'down']),
  /** In a cluster only: `down` while this node cannot reach the Redis the nodes share (status `degraded`, still 200: it serves its own devices). */
  redis: z.enum(['up', 'down']).optional(),
  /** What InfluxDB said when it refused the hub's credentials. */
  influxProblem: z.string().optional(),
  bufferedPoints: z.number(),
  failedWrites: z.number(),
  spool: z.object({ points: z.number(), bytes: z.number(), segments: z.number() }),
})

const OpenApi = z.record(z.string(), z.unknown()).meta({ description: 'an OpenAPI 3.1 document' })

export function systemRoutes (api: ApiContext, openapi: () => object) {
  return [
    route({
      method: 'GET',
      path: '/healthz',
      operationId: 'health',
      summary: 'Liveness and storage health: 200 while InfluxDB answers, 503 with the same body while it does not',
      tags: ['system'],
      access: 'public',
      response: Health,
      statuses: [503],
      handler: async ({ reply }) => {
        const influx = await api.store.ping(1000).catch(() => false)
        const { buffered, failedRequests } = api.writer.stats
        const spool = api.writer.spoolDepth
        // Spooling, or replaying the spool after an outage or a restart: history is not current yet.
        const current = influx && !api.writer.degraded && spool.points === 0
        // InfluxDB refusing the hub's credentials is a configuration error that no retry fixes.
        const configError = api.writer.configError
        // Without Redis a node still serves its own devices: a balancer must not take every node out at once.
        const redis = api.redisUp?.()
        if (!influx || configError) reply.code(503)
        return {
          status: configError ? 'misconfigured' : current && redis !== false ? 'ok' : 'degraded',
          influx: influx ? 'up' : 'down',
          ...(redis !== undefined && { redis: redis ? 'up' as const : 'down' as const }),
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
      operationId: 'metrics',
      summary: 'Prometheus metrics (text format)',
      tags: ['system'],
      access: 'public',
      response: z.string(),
      produces: 'text/plain',
      handler: async ({ reply }) => {
        reply.header('content-type', api.metrics.registry.contentType)
        return await api.metrics.registry.metrics()
      },
    }),
    route({
      method: 'GET',
      path: '/docs',
      operationId: 'docs',
      summary: 'The API reference: Swagger UI for a browser (Accept: text/html), else this OpenAPI document as JSON',
      tags: ['system'],
      access: 'public',
      response: OpenApi,
      produces: ['application/json', 'text/html'],
      handler: async ({ request, reply }) => {
        const accept = request.headers.accept ?? ''
        if (/\btext\/html\b/.test(accept)) {
          reply.header('content-type', 'text/html; charset=utf-8')
          return docsPage((openapi() as { info: { title: string } }).info)
        }
        return openapi()
      },
    }),
    route({
      method: 'GET',
      path: '/docs/json',
      operationId: 'openApiDocument',
      summary: 'This OpenAPI document as JSON',
      tags: ['system'],
      access: 'public',
      response: OpenApi,
      handler: async () => openapi(),
    }),
  ]
}
