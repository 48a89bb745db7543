import type { Socket } from 'node:net'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Admission } from '../../src/core/gateway.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import { corkUpgrade, failUpgrade, fromUpgrade } from '../../src/transport/ws.ts'
import { ChannelNameSchema } from '../../src/protocol/frames.ts'
import { errorRef } from '../../src/protocol/rest.ts'

declare module 'fastify' {
  interface FastifyRequest {
    admission: Admission | null
  }
}

const ParamsSchema = Type.Object({ channel: ChannelNameSchema })
const QuerySchema = Type.Object({
  since: Type.Optional(Type.String({ description: 'Last message id seen: replay everything after it before live messages' })),
  token: Type.Optional(Type.String({ description: 'Access token (prefer the header or the `bearer.<jwt>` subprotocol)' })),
  Authorization: Type.Optional(Type.String({ description: '`Bearer <jwt>` or `<jwt>` (GatewayWorker form)' }))
})

const accept = (): true => true

function sinceOf (v: unknown): string | undefined {
  if (v === undefined || typeof v === 'string') return v
  throw GatecastError.badSince('since must be given once')
}

const ws: FastifyPluginAsyncTypebox = async (app) => {
  app.decorateRequest('admission', null)

  app.route({
    method: 'GET',
    url: '/:channel',
    config: {
      rateLimit: {
        max: app.config.wsUpgradeRate,
        timeWindow: 60_000,
        // an accepted upgrade answers 101 and cannot carry them; a refusal still gets Retry-After
        addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
        // only upgrades get this far (see onRequest), and these refusals never reach admission's count
        onExceeded: () => { app.metrics.stats.refused(429, 'rate_limited') }
      }
    },
    schema: {
      tags: ['websocket'],
      summary: 'Open a WebSocket on a channel (upgrade). Every refusal is an HTTP error before any socket opens.',
      params: ParamsSchema,
      querystring: QuerySchema,
      response: { 400: errorRef, 401: errorRef, 403: errorRef, 426: errorRef, 429: errorRef, 503: errorRef }
    },
    // the schemas above document the route; admission (preValidation, just before validation
    // would run) already checks every part of the request, so validating again is wasted work per upgrade
    validatorCompiler: () => accept,
    // @fastify/rate-limit appends its hook after this one: a plain GET is answered 426 before it
    // and so never spends the IP's upgrade budget
    onRequest: (req, _reply, done) => {
      done(req.ws ? undefined : GatecastError.upgradeRequired())
    },
    // After the upgrade limit's onRequest hook, so every attempt counts, refused ones (probed
    // tokens) included, and a limited attempt costs no token check, Redis read or hook. Still
    // before the upgrade (the handler), so a refused client never gets a socket.
    preValidation: async (req) => {
      const query = req.query as Record<string, unknown>
      try {
        app.shedLoad()
        req.admission = await app.gatecast.admit({
          channel: (req.params as { channel: string }).channel,
          since: sinceOf(query.since),
          origin: req.headers.origin,
          tokens: { authorization: req.raw.headersDistinct.authorization, protocol: req.headers['sec-websocket-protocol'], query },
          remoteAddress: req.ip
        })
      } catch (err) {
        const e = err as { statusCode?: number, code?: string }
        app.metrics.stats.refused(e.statusCode ?? 500, e.code ?? 'internal')
        throw err
      }
    },
    // corked until the end of this turn (the transport uncorks it with the sockets it corked itself):
    // the 101 response and `ready` leave in one write
    preHandler: (req, _reply, done) => {
      corkUpgrade(req.raw.socket)
      done()
    },
    handler: async () => { throw GatecastError.upgradeRequired() },
    wsHandler: (socket, req) => {
      const tcp = req.raw.socket as Socket | null | undefined
      const admission = req.admission
      req.admission = null
      if (admission === null) {
        socket.terminate()
        return
      }
      app.metrics.stats.upgradesAccepted++
      app.gatecast.attach(fromUpgrade(socket, tcp), admission).catch((err: unknown) => {
        app.log.error({ err }, 'socket setup failed')
        failUpgrade(socket, tcp)
      })
    }
  })
}

export default ws
