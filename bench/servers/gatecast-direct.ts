// Gatecast with its upgrades answered outside Fastify's router: the question
// behind the handshake target ("Fastify routing, hooks and JWT included") is
// how much of Gatecast's cost per connection is Fastify's. The app is the
// `gatecast` bench server's; only the upgrade listener differs: the raw
// `upgrade` event goes straight to the same admission (load shedding, origin,
// channel rules, token, socket cap, connect hooks) and the same attach, with
// ws's handleUpgrade in between and the socket corked so that the 101 and
// `ready` leave in one write, as on the real route. The upgrade rate limit
// (@fastify/rate-limit, an onRequest hook) does not run here: about 2 % of a
// connection's CPU in the profiles. Not a product path — a measurement.
// Opt-in: `--only gatecast,ws,direct`.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { WebSocketServer } from 'ws'
import { isGatecastError } from '../../src/protocol/errors.ts'
import { corkUpgrade, failUpgrade, WsTransport } from '../../src/transport/ws.ts'
import { listeningGatecast } from './gatecast-app.ts'
import { portOf, refuseUpgrade, runServer } from './harness.ts'

runServer(async (opts) => {
  const app = await listeningGatecast(opts)
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: app.config.wsMaxPayload,
    clientTracking: false,
    perMessageDeflate: false,
    handleProtocols: (protocols) => protocols.has('gatecast') ? 'gatecast' : false
  })
  app.server.removeAllListeners('upgrade')
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const url = req.url ?? ''
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (!path.startsWith('/ws/')) return refuseUpgrade(socket, 404, 'not_found', 'not found')
    const query = Object.fromEntries(new URLSearchParams(q === -1 ? '' : url.slice(q + 1)))
    let channel: string
    try {
      channel = decodeURIComponent(path.slice(4))
    } catch {
      return refuseUpgrade(socket, 400, 'bad_channel', 'invalid channel name')
    }
    const admitted = (async () => {
      app.shedLoad()
      return await app.gatecast.admit({
        channel,
        since: query.since,
        origin: req.headers.origin,
        tokens: { authorization: req.headersDistinct.authorization, protocol: req.headers['sec-websocket-protocol'], query },
        remoteAddress: socket.remoteAddress ?? ''
      })
    })()
    admitted.then((admission) => {
      socket.removeAllListeners('error')
      corkUpgrade(socket)
      wss.handleUpgrade(req, socket, head, (ws) => {
        app.metrics.stats.upgradesAccepted++
        app.gatecast.attach(new WsTransport(ws), admission).catch(() => failUpgrade(ws, socket))
      })
    }, (err: unknown) => {
      if (isGatecastError(err)) refuseUpgrade(socket, err.statusCode, err.code, err.message)
      else refuseUpgrade(socket, 500, 'internal', 'internal error')
    })
  })
  return { port: portOf(app.server.address()) }
})
