// Per-route limits (login, refresh, upgrades); the routes set max and window.
// The counters live in the engine's auth store: with the Redis engine in
// Redis, so limits hold cluster-wide; with the memory engine in this process.
import fp from 'fastify-plugin'
import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { GatecastError } from '../src/protocol/errors.ts'
import type { AuthStore } from '../src/engine/index.ts'

type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1]

/** A @fastify/rate-limit store class over `store`: fixed windows, one counter per route and key. */
function engineRateLimitStore (store: AuthStore): FastifyRateLimitStoreCtor {
  class EngineRateLimitStore implements FastifyRateLimitStore {
    readonly #scope: string

    constructor (_options?: unknown, scope = '') {
      this.#scope = scope
    }

    incr (key: string, callback: IncrCallback, timeWindow: number): void {
      store.rateHit(this.#scope + key, timeWindow).then(
        r => callback(null, { current: r.count, ttl: r.ttlMs }),
        (err: Error) => callback(err)
      )
    }

    child (routeOptions: object): FastifyRateLimitStore {
      // the plugin hands the route as `routeInfo`; method + url as its Redis store scoped keys
      const route = (routeOptions as { routeInfo?: { method?: unknown, url?: unknown } }).routeInfo
      return new EngineRateLimitStore(undefined, `${this.#scope}${String(route?.method ?? '')}${String(route?.url ?? '')}-`)
    }
  }
  return EngineRateLimitStore
}

export default fp(async (app) => {
  await app.register(rateLimit, {
    global: false,
    store: engineRateLimitStore(app.engine.store),
    // a store error (Redis away) lets the request through
    skipOnError: true,
    errorResponseBuilder: (_req, ctx) => GatecastError.rateLimited(`rate limit exceeded, retry in ${ctx.after}`)
  })
}, { name: 'gatecast-rate-limit', dependencies: ['gatecast-engine'], fastify: '5.x' })
