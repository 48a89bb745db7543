// Socket.IO 4, as its documentation sets it up: a JWT middleware (fast-jwt,
// HS256, the token in `auth.token` of the handshake), one room per channel,
// `io.to(room).emit()` for fan-out. WebSocket transport only (the load
// generator never polls), no per-message deflate, no client bundle served.
import { createServer } from 'node:http'
import { createVerifier } from 'fast-jwt'
import { Server } from 'socket.io'
import { CHANNEL_RE } from '../common.ts'
import { portOf, runServer } from './harness.ts'

interface ClientEvents {
  publish: (data: unknown) => void
}

interface ServerEvents {
  ready: (frame: { type: 'ready', channel: string, connectionId: string, userId: string, expiresAt: number | null }) => void
  message: (frame: { type: 'message', channel: string, id: string, from: string, data: unknown, ts: number }) => void
}

interface SocketData {
  userId: string
  channel: string
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
    const channel = socket.handshake.query.channel
    if (typeof channel !== 'string' || !CHANNEL_RE.test(channel)) return next(new Error('bad_channel'))
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
    // the in-memory adapter joins synchronously; another adapter would return a promise
    const joining = socket.join(channel)
    if (joining instanceof Promise) joining.catch(() => socket.disconnect(true))
    socket.emit('ready', { type: 'ready', channel, connectionId: socket.id, userId, expiresAt: exp })
    socket.on('publish', (data: unknown) => {
      const seq = (seqs.get(channel) ?? 0) + 1
      seqs.set(channel, seq)
      io.to(channel).emit('message', { type: 'message', channel, id: String(seq), from: userId, data, ts: Date.now() })
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return { port: portOf(server.address()) }
})
