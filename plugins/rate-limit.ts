// Per-route limits (login, refresh, upgrades); the routes set max and window.
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { GatecastError } from '../src/errors.ts'

export default fp(async (app) => {
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => new GatecastError(429, 'rate_limited', `rate limit exceeded, retry in ${ctx.after}`)
  })
}, { name: 'gatecast-rate-limit', fastify: '5.x' })
