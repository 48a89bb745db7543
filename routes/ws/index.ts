// The upgrade routes: `/ws/:channel` (subscribed to the path channel), `/ws`
// (subscribed to nothing yet), and, through upgradeRoute(), `/` (the
// GatewayWorker form), which routes/demo.ts shares with the demo page.
import type { Socket } from 'node:net'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { RateLimitOptions, RateLimitPluginOptions } from '@fastify/rate-limit'
import type { Admission } from '../../src/core/gateway.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import { corkUpgrade, failUpgrade, fromUpgrade } from '../../src/transport/ws.ts'
import { ChannelNameSchema } from '../../src/protocol/frames.ts'
import { errorRef } from '../../src/protocol/rest.ts'

const ParamsSchema = Type.Object({ channel: ChannelNameSchema })
const TokenQuery = {
  token: Type.Optional(Type.String({ description: 'Access token (prefer the header or the `bearer.<jwt>` subprotocol)' })),
  Authorization: Type.Optional(Type.String({ description: '`Bearer <jwt>` or `<jwt>` (GatewayWorker form)' }))
}
const QuerySchema = Type.Object({
  since: Type.Optional(Type.String({ description: 'Last message id seen: replay everything after it before live messages' })),
  ...TokenQuery
})
const BareQuerySchema = Type.Object(TokenQuery)

const accept = (): true => true

function sinceOf (v: unknown): string | undefined {
  if (v === undefined || typeof v === 'string') return v
  throw GatecastError.badSince('since must be given once')
}

// per upgrading TCP socket, the listener that gives the admission's slot back if it closes first
const guards = new WeakMap<Socket, () => void>()

/** every upgrade route counts against one budget per IP, whichever URL it takes */
const UPGRADE_RATE_GROUP = 'ws-upgrade'

/**
 * The route options of an upgrade URL. `plain` answers a GET that is no
 * upgrade (the demo page at `/`); without it such a GET gets 426.
 */
export function upgradeRoute (app: FastifyInstance, url: string, plain?: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): RouteOptions {
  const withChannel = url.includes(':channel')
  // the plugin merges every option of its own into a route's (its types list the header ones for the plugin only)
  const rateLimit: RateLimitPluginOptions = {
    max: app.config.wsUpgradeRate,
    timeWindow: 60_000,
    groupId: UPGRADE_RATE_GROUP,
    // an accepted upgrade answers 101 and cannot carry them; a refusal still gets Retry-After
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    // only upgrades get this far (see onRequest), and these refusals never reach admission's count
    onExceeded: () => { app.metrics.stats.refused(429, 'rate_limited') }
  }
  return {
    method: 'GET',
    url,
    config: { rateLimit: rateLimit as RateLimitOptions },
    schema: {
      tags: ['websocket'],
      summary: withChannel
        ? 'Open a WebSocket subscribed to a channel (upgrade). Every refusal is an HTTP error before any socket opens.'
        : plain === undefined
          ? 'Open a WebSocket subscribed to nothing yet; it subscribes with `subscribe` frames. Every refusal is an HTTP error before any socket opens.'
          : 'The GatewayWorker form of `/ws` (`/?Authorization=Bearer <jwt>`); a plain GET gets the demo page',
      ...(withChannel ? { params: ParamsSchema } : {}),
      querystring: withChannel ? QuerySchema : BareQuerySchema,
      response: { ...(plain === undefined ? {} : { 200: Type.String() }), 400: errorRef, 401: errorRef, 403: errorRef, 426: errorRef, 429: errorRef, 503: errorRef }
    },
    // the schemas above document the route; admission (preValidation, just before validation
    // would run) already checks every part of the request, so validating again is wasted work per upgrade
    validatorCompiler: () => accept,
    // @fastify/rate-limit appends its hook after this one: a plain GET is answered (426, or the
    // page) before it and so never spends the IP's upgrade budget
    onRequest: (req, reply, done) => {
      if (req.ws) done()
      else if (plain === undefined) done(GatecastError.upgradeRequired())
      // answered here (Fastify's early reply from a hook): done() only for a failure
      else plain(req, reply).catch(done)
    },
    // After the upgrade limit's onRequest hook, so every attempt counts, refused ones (probed
    // tokens) included, and a limited attempt costs no token check, Redis read or hook. Still
    // before the upgrade (the handler), so a refused client never gets a socket.
    preValidation: async (req) => {
      const query = req.query as Record<string, unknown>
      let admission: Admission
      try {
        app.shedLoad()
        admission = await app.gatecast.admit({
          channel: withChannel ? (req.params as { channel: string }).channel : null,
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
      // the client may go before the upgrade completes: its socket slot must not stay taken.
      // Gone already (reset while admission awaited): no socket will come, nor a close event.
      const tcp = req.raw.socket
      if (tcp.destroyed) {
        app.gatecast.abandon(admission)
        return
      }
      req.admission = admission
      // The guard holds the admission, not the request, which the open socket must let go of.
      const guard = (): void => { app.gatecast.abandon(admission) }
      tcp.once('close', guard)
      guards.set(tcp, guard)
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
      const guard = tcp == null ? undefined : guards.get(tcp)
      if (guard !== undefined && tcp != null) {
        guards.delete(tcp)
        tcp.removeListener('close', guard)
      }
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
  }
}

const ws: FastifyPluginAsyncTypebox = async (app) => {
  app.route(upgradeRoute(app, '/:channel'))
  app.route(upgradeRoute(app, '/'))
}

export default ws
