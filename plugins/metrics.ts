import fp from 'fastify-plugin'
import { GatecastMetrics } from '../src/core/stats.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatecastMetrics
  }
}

export default fp(async (app) => {
  app.decorate('metrics', new GatecastMetrics())
}, { name: 'gatecast-metrics', fastify: '5.x' })
