// Per-route limits (login, refresh, upgrades); the routes set max and window.
// With the Redis engine the counters live in Redis, so limits hold cluster-wide.
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { GatecastError } from '../src/protocol/errors.ts'
import { RedisEngine } from '../src/engine/redis.ts'

export default fp(async (app) => {
  const redis = (app.engine as { redis?: RedisEngine }).redis
  await app.register(rateLimit, {
    global: false,
    ...(redis !== undefined ? { redis: redis.client, nameSpace: `${app.config.redisPrefix}:rl:`, skipOnError: true } : {}),
    errorResponseBuilder: (_req, ctx) => new GatecastError(429, 'rate_limited', `rate limit exceeded, retry in ${ctx.after}`)
  })
}, { name: 'gatecast-rate-limit', dependencies: ['gatecast-engine'], fastify: '5.x' })
