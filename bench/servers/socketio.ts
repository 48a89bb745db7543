// Socket.IO 4, as its documentation sets it up: a JWT middleware (fast-jwt,
// HS256, the token in `auth.token` of the handshake), one room per channel,
// `io.to(room).emit()` for fan-out. WebSocket transport only (the load
// generator never polls), no per-message deflate, no client bundle served.
// Without a `channel` in the handshake query a socket starts in no room and
// joins rooms with `subscribe` (acknowledged, `socket.join(room)`), the multi
// scenario; `publish` then names one of its rooms as a second argument.
import { createServer } from 'node:http'
import { createVerifier } from 'fast-jwt'
import { Server } from 'socket.io'
import { CHANNEL_RE } from '../common.ts'
import { portOf, runServer } from './harness.ts'

interface ClientEvents {
  publish: (data: unknown, channel?: unknown) => void
  subscribe: (channel: unknown, ack: (answer: { ok: boolean, channel: string }) => void) => void
  unsubscribe: (channel: unknown, ack: (answer: { ok: boolean, channel: string }) => void) => void
}

interface ServerEvents {
  ready: (frame: { type: 'ready', channel?: string, connectionId: string, userId: string, expiresAt: number | null }) => void
  message: (frame: { type: 'message', channel: string, id: string, from: string, data: unknown, ts: number }) => void
}

interface SocketData {
  userId: string
  /** the handshake's channel; null: the socket joins rooms with `subscribe` */
  channel: string | null
  exp: number | null
}

runServer(async (opts) => {
  const verify = createVerifier({ key: opts.secret, algorithms: ['HS256'] })
  const server = createServer()
  const io = new Server<ClientEvents, ServerEvents, Record<string, never>, SocketData>(server, {
    serveClient: false,
    transports: ['websocket'],
    perMessageDeflate: false,
    maxHttpBufferSize: 65536
  })
  const seqs = new Map<string, number>()

  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown }).token
    const channel = socket.handshake.query.channel ?? null
    if (channel !== null && (typeof channel !== 'string' || !CHANNEL_RE.test(channel))) return next(new Error('bad_channel'))
    if (typeof token !== 'string') return next(new Error('token_missing'))
    try {
      const claims = verify(token) as { sub?: unknown, exp?: number }
      if (typeof claims.sub !== 'string') throw new Error('no sub')
      socket.data = { userId: claims.sub, channel, exp: claims.exp ?? null }
    } catch {
      return next(new Error('token_invalid'))
    }
    next()
  })

  io.on('connection', (socket) => {
    const { userId, channel, exp } = socket.data
    if (channel !== null) {
      // the in-memory adapter joins synchronously; another adapter would return a promise
      const joining = socket.join(channel)
      if (joining instanceof Promise) joining.catch(() => socket.disconnect(true))
      socket.emit('ready', { type: 'ready', channel, connectionId: socket.id, userId, expiresAt: exp })
      socket.on('publish', (data: unknown) => {
        const seq = (seqs.get(channel) ?? 0) + 1
        seqs.set(channel, seq)
        io.to(channel).emit('message', { type: 'message', channel, id: String(seq), from: userId, data, ts: Date.now() })
      })
      return
    }
    socket.emit('ready', { type: 'ready', connectionId: socket.id, userId, expiresAt: exp })
    // the in-memory adapter joins and leaves synchronously (as on connection above)
    socket.on('subscribe', (room: unknown, ack) => {
      if (typeof ack !== 'function') return
      if (typeof room !== 'string' || !CHANNEL_RE.test(room)) return ack({ ok: false, channel: String(room) })
      socket.join(room)
      ack({ ok: true, channel: room })
    })
    socket.on('unsubscribe', (room: unknown, ack) => {
      if (typeof ack !== 'function') return
      if (typeof room !== 'string') return ack({ ok: false, channel: String(room) })
      socket.leave(room)
      ack({ ok: true, channel: room })
    })
    socket.on('publish', (data: unknown, room?: unknown) => {
      // like Gatecast, a socket publishes only to a room it is in
      if (typeof room !== 'string' || !socket.rooms.has(room)) return
      const seq = (seqs.get(room) ?? 0) + 1
      seqs.set(room, seq)
      io.to(room).emit('message', { type: 'message', channel: room, id: String(seq), from: userId, data, ts: Date.now() })
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return { port: portOf(server.address()) }
})
