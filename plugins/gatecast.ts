// The `gatecast` decorator: the gateway's operations and hooks, for routes and
// for plugins that hold business logic (GatewayWorker's Events class).
import fp from 'fastify-plugin'
import { Gatecast } from '../src/core/gateway.ts'

declare module 'fastify' {
  interface FastifyInstance {
    gatecast: Gatecast
  }
}

export default fp(async (app) => {
  const gatecast = new Gatecast(app.engine, app.auth, app.config, app.log, app.metrics.stats)
  await gatecast.start()
  app.decorate('gatecast', gatecast)
  // before @fastify/websocket's preClose (that plugin depends on this one): upgrades are
  // refused with 503 (not dropped) while open sockets close in batches with 1001
  app.addHook('preClose', async () => { await gatecast.shutdown(app.config.shutdownTimeout * 1000) })
}, { name: 'gatecast-core', dependencies: ['gatecast-config', 'gatecast-engine', 'gatecast-jwt', 'gatecast-metrics'], fastify: '5.x' })
