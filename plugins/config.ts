import fp from 'fastify-plugin'
import type { AppPluginOptions } from '../app.ts'
import type { GatecastConfig } from '../src/config/config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: GatecastConfig
  }
}

export default fp<AppPluginOptions>(async (app, opts) => {
  app.decorate('config', opts.app.resolvedConfig)
}, { name: 'gatecast-config', fastify: '5.x' })
