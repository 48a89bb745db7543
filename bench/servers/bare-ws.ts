// The Node floor: a bare `ws` server on its own http server. The HS256 token
// of the Authorization header is verified with fast-jwt during the upgrade (a
// refusal is an HTTP response, no socket), sockets are kept in a Map of Sets
// per channel, and each publish is serialised once and sent to every socket
// of the channel. Same frames as Gatecast: `ready` first, then `message`
// frames with an id. Written the way a user of `ws` would write it.
// `/ws/<channel>` opens a socket on one channel; `/ws` one that joins channels
// with `subscribe` frames (the multi scenario).
import { createServer, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createVerifier } from 'fast-jwt'
import { WebSocketServer } from 'ws'
import { CHANNEL_RE } from '../common.ts'
import { bearerIdentity, portOf, refuseUpgrade, runServer } from './harness.ts'
import { attachMulti, corkedBroadcast, joinRoom, sendEach, type Room } from './rooms.ts'

runServer(async (opts) => {
  const verify = createVerifier({ key: opts.secret, algorithms: ['HS256'] })
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 65536 })
  const rooms = new Map<string, Room>()
  // `wscork` (opt-in): the "Node limit" variant of this server
  const broadcast = process.env.BENCH_SERVER_KIND === 'wscork' ? corkedBroadcast() : sendEach

  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'application/json' }).end('{"statusCode":426,"code":"upgrade_required"}')
  })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    const url = req.url ?? ''
    const multi = url === '/ws' || url.startsWith('/ws?')
    const m = /^\/ws\/([^/?]+)/.exec(url)
    const channel = m === null ? '' : decodeURIComponent(m[1])
    if (!multi && !CHANNEL_RE.test(channel)) return refuseUpgrade(socket, 400, 'bad_channel', 'invalid channel name')
    const who = bearerIdentity(req, socket, verify)
    if (who === null) return
    const { userId, exp } = who

    wss.handleUpgrade(req, socket, head, (ws) => {
      if (multi) attachMulti(rooms, ws, userId, exp, broadcast)
      else joinRoom(rooms, channel, ws, userId, exp, broadcast)
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return { port: portOf(server.address()) }
})
