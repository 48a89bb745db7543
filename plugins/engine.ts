import fp from 'fastify-plugin'
import { createEngine } from '../src/engine/index.ts'
import type { Engine } from '../src/engine/types.ts'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export default fp(async (app) => {
  const engine = createEngine(app.config, app.log)
  app.decorate('engine', engine)
  // last out: sockets are closed (preClose) before the engine goes
  app.addHook('onClose', async () => { await engine.close() })
}, { name: 'gatecast-engine', dependencies: ['gatecast-config'], fastify: '5.x' })
