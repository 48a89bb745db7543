import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorRef, TokenPairSchema } from '../../src/protocol/rest.ts'

const LoginBodySchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 128 }),
  password: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })

const RefreshBodySchema = Type.Object({
  refresh_token: Type.String({ minLength: 1, maxLength: 512 })
}, { additionalProperties: false })

const LogoutBodySchema = Type.Object({
  refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 512 }))
}, { additionalProperties: false })

// credentials and tokens are small; a big body is only a cost for the parser
const bodyLimit = 16 * 1024

const auth: FastifyPluginAsyncTypebox = async (app) => {
  const loginLimit = { max: app.config.loginRate, timeWindow: 60_000 }

  app.post('/login', {
    bodyLimit,
    config: { rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary: 'Exchange a username and password for an access and a refresh token',
      body: LoginBodySchema,
      response: { 200: TokenPairSchema, 400: errorRef, 401: errorRef, 429: errorRef, 503: errorRef }
    }
  }, async (req) => {
    app.shedLoad()
    return await app.auth.login(req.body.username, req.body.password)
  })

  app.post('/refresh', {
    bodyLimit,
    config: { rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary: 'Rotate a refresh token: the old one stops working; reusing it revokes the whole family',
      body: RefreshBodySchema,
      response: { 200: TokenPairSchema, 400: errorRef, 401: errorRef, 429: errorRef, 503: errorRef }
    }
  }, async (req) => app.auth.refresh(req.body.refresh_token))

  app.post('/logout', {
    bodyLimit,
    // the token is checked before the body, so a missing token is a 401 whatever was sent
    onRequest: app.authenticate,
    preValidation: async (req) => { req.body ??= {} },
    schema: {
      tags: ['auth'],
      summary: 'Revoke the access token (by jti) and, when given, the refresh token family, on every node',
      security: [{ bearer: [] }],
      body: LogoutBodySchema,
      response: { 204: Type.Null(), 400: errorRef, 401: errorRef }
    }
  }, async (req, reply) => {
    if (req.identity !== null) await app.auth.logout(req.identity, req.body.refresh_token)
    return reply.code(204).send(null)
  })
}

export default auth
