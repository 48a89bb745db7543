// preHandlers for routes: a Bearer access token, or backend credentials
// (X-API-Key, or a Bearer token with role admin).
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { GatecastError, isGatecastError } from '../src/protocol/errors.ts'
import type { Identity } from '../src/auth/claims.ts'
import { extractToken } from '../src/auth/extract.ts'
import { checkApiKey } from '../src/config/config.ts'

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null
  }
  interface FastifyInstance {
    authenticate: (req: FastifyRequest) => Promise<void>
    authenticateAdmin: (req: FastifyRequest) => Promise<void>
  }
}

// Failed server-API credentials an IP may have per window before it is refused
// outright. A backend with the right key never fails, and one with a wrong key
// fails on every call, so a low bound costs real clients nothing; it holds a
// guesser to 30 a minute per IP (cluster-wide, in the engine's counters), as
// LOGIN_RATE does for logins, which makes even a weak development key slow to
// guess and keeps token verification off a guesser's budget.
const ADMIN_FAILURES = 30
const ADMIN_FAILURE_WINDOW = 60

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export default fp(async (app) => {
  checkApiKey(app.config, msg => app.log.warn(msg))
  app.decorateRequest('identity', null)
  const apiKey = app.config.apiKey === undefined ? null : digest(app.config.apiKey)
  const store = app.engine.store

  async function authenticate (req: FastifyRequest): Promise<void> {
    const token = extractToken({ authorization: req.raw.headersDistinct.authorization, query: {} })
    if (token === null) throw GatecastError.tokenMissing('missing Bearer token')
    req.identity = await app.auth.verifyAccess(token)
  }

  async function checkAdmin (req: FastifyRequest): Promise<void> {
    const key = req.headers['x-api-key']
    if (typeof key === 'string') {
      if (apiKey !== null && timingSafeEqual(digest(key), apiKey)) return
      throw new GatecastError(401, 'invalid_api_key', 'invalid API key')
    }
    await authenticate(req)
    if (req.identity?.roles.includes('admin') !== true) throw GatecastError.forbidden('the server API needs an API key or the admin role')
  }

  async function authenticateAdmin (req: FastifyRequest): Promise<void> {
    const failKey = `admin-fail:${req.ip}`
    // before the credentials: a locked-out IP learns nothing more, the right key included
    if (await count(() => store.hits(failKey)) >= ADMIN_FAILURES) {
      // the counter's window started at the IP's first failure; a whole window is the most left
      throw GatecastError.rateLimited('too many failed credentials from this address; try again later', { 'retry-after': String(ADMIN_FAILURE_WINDOW) })
    }
    try {
      await checkAdmin(req)
    } catch (err) {
      // only the client's own failures: an engine or identity-provider outage is not a guess
      if (isGatecastError(err) && (err.statusCode === 401 || err.statusCode === 403) && err.code !== 'jwks_unavailable') {
        await count(() => store.hit(failKey, ADMIN_FAILURE_WINDOW))
      }
      throw err
    }
  }

  // With the engine away the counter is skipped rather than the request refused,
  // as the route rate limits do: /metrics must answer during an outage, and the
  // credentials are still checked
  async function count (op: () => Promise<number>): Promise<number> {
    try {
      return await op()
    } catch (err) {
      app.log.warn({ err }, 'failed-credential counter unavailable')
      return 0
    }
  }

  app.decorate('authenticate', authenticate)
  app.decorate('authenticateAdmin', authenticateAdmin)
}, { name: 'gatecast-authenticate', dependencies: ['gatecast-jwt', 'gatecast-engine'], fastify: '5.x' })
