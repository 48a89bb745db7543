import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { AuthService } from '../src/auth.ts'
import { resolveJwtSecret } from '../src/config.ts'
import { jwtPluginOptions } from '../src/tokens.ts'

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthService
  }
}

export default fp(async (app) => {
  const secret = resolveJwtSecret(app.config, msg => app.log.warn(msg))
  await app.register(fastifyJwt, jwtPluginOptions(app.config, secret))
  app.decorate('auth', new AuthService(app.jwt, app.engine, app.config, app.users))
}, { name: 'gatecast-jwt', dependencies: ['gatecast-config', 'gatecast-engine', 'gatecast-users'], fastify: '5.x' })
