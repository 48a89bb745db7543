import fp from 'fastify-plugin'
import type { GatecastConfig } from '../src/config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: GatecastConfig
  }
}

export default fp<{ config: GatecastConfig }>(async (app, opts) => {
  app.decorate('config', opts.config)
}, { name: 'gatecast-config', fastify: '5.x' })
