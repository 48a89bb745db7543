// Signing and verification keys (src/auth/keys.ts) and the `auth` decorator.
import fp from 'fastify-plugin'
import { AuthService } from '../src/auth/service.ts'
import { resolveJwtSecret } from '../src/config/config.ts'
import { createTokenKeys } from '../src/auth/keys.ts'

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
  app.decorate('auth', new AuthService(keys, app.engine, app.config, app.users))
  // warm the identity provider's keys without holding up the start (a failure is logged and retried on use)
  app.addHook('onReady', async () => { keys.prefetch().catch(() => {}) })
  app.addHook('onClose', async () => { keys.close() })
}, { name: 'gatecast-jwt', dependencies: ['gatecast-config', 'gatecast-engine', 'gatecast-users'], fastify: '5.x' })
