// @fastify/jwt on the instance (`app.jwt`, `request.jwtVerify`, `reply.jwtSign`)
// with Gatecast's keys (src/auth/keys.ts), and the `auth` decorator that signs
// and verifies through it.
import fp from 'fastify-plugin'
import fastifyJwt, { type FastifyJWTOptions, type Secret } from '@fastify/jwt'
import { keyedVerifier } from '../src/auth/jwt.ts'
import { AuthService } from '../src/auth/service.ts'
import { resolveJwtSecret } from '../src/config/config.ts'
import { createTokenKeys } from '../src/auth/keys.ts'
import type { KeyCallback } from '../src/auth/token-keys.ts'

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthService
  }
}

export default fp(async (app) => {
  const secret = resolveJwtSecret(app.config, msg => app.log.warn(msg))
  const log = app.log.child({ component: 'jwks' })
  const keys = createTokenKeys(app.config, secret, {
    warn: msg => app.log.warn(msg),
    log: { warn: (obj, msg) => log.warn(obj, msg), info: (obj, msg) => log.info(obj, msg) }
  })
  if (!keys.canSign) {
    app.log.warn(`JWT_PRIVATE_KEY_FILE is not set: ${app.config.jwtAlgorithm} tokens are only verified; POST /auth/login and /auth/refresh answer 503 signing_unavailable`)
  }

  // @fastify/jwt 10 calls the key function as (request, decoded, cb) from
  // request.jwtVerify but as (decoded, cb) from app.jwt.verify, where fast-jwt
  // calls it itself (fastify/fastify-jwt#388); the callback form lets a local
  // key come back in the same tick on both paths.
  const publicKey = (...args: unknown[]): void => {
    if (typeof args[1] === 'function') keys.fetchKey(args[0], args[1] as KeyCallback)
    else keys.fetchKey(args[1], args[2] as KeyCallback)
  }
  const verify = { ...keys.verifyOptions }
  // app.jwt exists once the plugin below is registered; the closures only read it on use
  const auth = new AuthService(keys, app.engine, app.config, app.users, {
    // request.jwtVerify's way, not app.jwt.verify's: src/auth/jwt.ts says why
    verify: keyedVerifier(keys, verify),
    sign: keys.canSign ? payload => app.jwt.sign(payload) : undefined
  })
  const options: FastifyJWTOptions = {
    secret: { public: publicKey as Secret, ...(keys.privateKey !== undefined ? { private: keys.privateKey } : {}) },
    // the key function reads the header's kid and alg
    decode: { complete: true },
    sign: { ...keys.signOptions },
    verify,
    // @fastify/jwt runs it in request.jwtVerify alone; verifyAccess checks revocation itself
    trusted: async (_req, payload) => auth.isTrusted(payload)
  }
  await app.register(fastifyJwt, options)
  app.decorate('auth', auth)
  // warm the identity provider's keys without holding up the start (a failure is logged and retried on use)
  app.addHook('onReady', async () => { keys.prefetch().catch(() => {}) })
  app.addHook('onClose', async () => { keys.close() })
}, { name: 'gatecast-jwt', dependencies: ['gatecast-config', 'gatecast-engine', 'gatecast-users'], fastify: '5.x' })
