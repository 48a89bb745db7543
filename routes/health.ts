import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorRef } from '../src/protocol/rest.ts'
import { GatecastError } from '../src/protocol/errors.ts'

const StatusSchema = Type.Object({ status: Type.Literal('ok') })

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'The process is alive', response: { 200: StatusSchema } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Ready for traffic: the engine is reachable and the node is not shutting down',
      response: { 200: StatusSchema, 503: errorRef }
    }
  }, async () => {
    if (app.gatecast.shuttingDown) throw GatecastError.shuttingDown()
    if (!app.engine.isReady()) throw GatecastError.unavailable()
    return { status: 'ok' as const }
  })

  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (X-API-Key or an admin Bearer token required when API_KEY is set)',
      produces: ['text/plain'],
      response: { 200: Type.String(), 401: errorRef, 403: errorRef, 429: errorRef }
    },
    preHandler: async (req) => {
      if (app.config.apiKey !== undefined) await app.authenticateAdmin(req)
    }
  }, async (_req, reply) => {
    reply.type(app.metrics.registry.contentType)
    return app.metrics.registry.metrics()
  })
}

export default health
