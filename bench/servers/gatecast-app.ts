// Gatecast itself, as build() makes it, with the limits that would throttle a
// benchmark lifted (message rate, upgrade rate, sockets per user, load
// shedding on event-loop delay) and logging at warn. Everything else is the
// default: history on, Fastify hooks, schemas, rate-limit and under-pressure
// plugins, metrics. With redisUrl: the Redis (cluster) engine.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { build } from '../../server.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'
import type { ServerOptions } from '../common.ts'

/** The app, listening on a free loopback port; `extra` on top of the bench's settings. */
export async function listeningGatecast (opts: ServerOptions, extra: ConfigOverrides = {}): Promise<FastifyInstance> {
  // dev defaults (data/) would go here; with a secret and verifyCredentials nothing is written
  const cwd = mkdtempSync(join(tmpdir(), 'gatecast-bench-'))
  const app = await build({
    cwd,
    env: {},
    verifyCredentials: async () => null,
    logger: { level: opts.logLevel ?? 'warn', stream: process.stderr },
    config: {
      host: '127.0.0.1',
      port: 0,
      jwtSecret: opts.secret,
      wsMessageRate: 1_000_000,
      wsUpgradeRate: 1_000_000_000,
      wsSocketsPerUser: 1_000_000,
      // load shedding stays registered (its sampling and hook are part of the cost) but never refuses
      maxEventLoopDelay: 3_600_000,
      // as in production (the default there): the console's per-message count is not part of the gateway
      adminConsole: false,
      ...(opts.redisUrl !== undefined ? { redisUrl: opts.redisUrl, redisCluster: opts.redisCluster === true, redisPrefix: opts.redisPrefix } : {}),
      ...extra
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  rmSync(cwd, { recursive: true, force: true })
  return app
}
