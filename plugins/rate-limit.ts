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
      // routes of one group share a counter (the upgrade URLs); others are scoped by method + url,
      // as the plugin's own Redis store scopes them (it hands the route as `routeInfo`)
      const o = routeOptions as { groupId?: unknown, routeInfo?: { method?: unknown, url?: unknown } }
      const scope = typeof o.groupId === 'string' ? `group:${o.groupId}` : `${String(o.routeInfo?.method ?? '')}${String(o.routeInfo?.url ?? '')}`
      return new EngineRateLimitStore(undefined, `${this.#scope}${scope}-`)
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
