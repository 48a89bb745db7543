// The `engine` decorator: REDIS_URL set, the Redis engine (every node with the
// same URL is one gateway; REDIS_CLUSTER: a Redis Cluster); otherwise
// everything stays in this process.
import fp from 'fastify-plugin'
import { createMemoryEngine, createRedisEngine, type Engine } from '../src/engine/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

export default fp(async (app) => {
  const { redisUrl, redisCluster, redisPrefix, nodeTimeout, historyMaxBytes } = app.config
  const engine = redisUrl !== undefined
    ? createRedisEngine({ url: redisUrl, cluster: redisCluster, prefix: redisPrefix, nodeTimeoutMs: nodeTimeout * 1000, log: app.log, historyMaxBytes })
    : createMemoryEngine({ historyMaxBytes })
  app.decorate('engine', engine)
  // last out: sockets are closed (preClose) before the engine goes
  app.addHook('onClose', async () => { await engine.close() })
}, { name: 'gatecast-engine', dependencies: ['gatecast-config'], fastify: '5.x' })
