// preHandlers for routes: a Bearer access token, or backend credentials
// (X-API-Key, or a Bearer token with role admin).
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { GatecastError } from '../src/protocol/errors.ts'
import type { Identity } from '../src/auth/claims.ts'
import { extractToken } from '../src/auth/extract.ts'

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null
  }
  interface FastifyInstance {
    authenticate: (req: FastifyRequest) => Promise<void>
    authenticateAdmin: (req: FastifyRequest) => Promise<void>
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export default fp(async (app) => {
  app.decorateRequest('identity', null)
  const apiKey = app.config.apiKey === undefined ? null : digest(app.config.apiKey)

  async function authenticate (req: FastifyRequest): Promise<void> {
    const token = extractToken({ authorization: req.raw.headersDistinct.authorization, query: {} })
    if (token === null) throw GatecastError.tokenMissing('missing Bearer token')
    req.identity = await app.auth.verifyAccess(token)
  }

  async function authenticateAdmin (req: FastifyRequest): Promise<void> {
    const key = req.headers['x-api-key']
    if (typeof key === 'string') {
      if (apiKey !== null && timingSafeEqual(digest(key), apiKey)) return
      throw new GatecastError(401, 'invalid_api_key', 'invalid API key')
    }
    await authenticate(req)
    if (req.identity?.roles.includes('admin') !== true) throw GatecastError.forbidden('the server API needs an API key or the admin role')
  }

  app.decorate('authenticate', authenticate)
  app.decorate('authenticateAdmin', authenticateAdmin)
}, { name: 'gatecast-authenticate', dependencies: ['gatecast-jwt'], fastify: '5.x' })
