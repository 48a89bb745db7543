// The Fastify floor: what routing an upgrade through Fastify costs before any
// Gatecast feature. Fastify 5, @fastify/websocket and @fastify/jwt with no other
// plugin and no logger; the route's onRequest hook verifies the same HS256 token
// with request.jwtVerify() (a refusal is an HTTP error, no socket), and the
// wsHandler does what the bare ws server does (rooms.ts).
// Opt-in: `--only gatecast,ws,fastify`.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import fastifyJwt from '@fastify/jwt'
import { CHANNEL_RE } from '../common.ts'
import { portOf, runServer } from './harness.ts'
import { joinRoom, type Room } from './rooms.ts'

class Refused extends Error {
  constructor (readonly statusCode: number, readonly code: string) { super(code) }
}

declare module 'fastify' {
  interface FastifyRequest {
    floorIdentity: { userId: string, exp: number | null } | null
  }
}

runServer(async (opts) => {
  const rooms = new Map<string, Room>()
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { perMessageDeflate: false, clientTracking: false, maxPayload: 65536 } })
  await app.register(fastifyJwt, { secret: opts.secret, verify: { algorithms: ['HS256'] } })
  app.decorateRequest('floorIdentity', null)
  app.setErrorHandler((err: { statusCode?: number, code?: string }, _req, reply) => {
    return reply.code(err.statusCode ?? 500).send({ statusCode: err.statusCode ?? 500, code: err.code ?? 'internal' })
  })

  app.route({
    method: 'GET',
    url: '/ws/:channel',
    onRequest: async (req) => {
      const channel = (req.params as { channel: string }).channel
      if (!CHANNEL_RE.test(channel)) throw new Refused(400, 'bad_channel')
      let claims: { sub?: unknown, exp?: number }
      try {
        claims = await req.jwtVerify<{ sub?: unknown, exp?: number }>()
      } catch (err) {
        throw new Refused(401, (err as { code?: unknown }).code === 'FST_JWT_NO_AUTHORIZATION_IN_HEADER' ? 'token_missing' : 'token_invalid')
      }
      if (typeof claims.sub !== 'string') throw new Refused(401, 'token_invalid')
      req.floorIdentity = { userId: claims.sub, exp: claims.exp ?? null }
    },
    handler: async () => { throw new Refused(426, 'upgrade_required') },
    wsHandler: (ws, req) => {
      const identity = req.floorIdentity
      if (identity === null) return ws.terminate()
      joinRoom(rooms, (req.params as { channel: string }).channel, ws, identity.userId, identity.exp)
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: portOf(app.server.address()) }
})
