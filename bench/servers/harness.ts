// The part every benchmark server process shares: read its options, listen on
// 127.0.0.1, tell the orchestrator the port over IPC, answer `gc` (the
// process runs with --expose-gc, so idle RSS is read after a full collection),
// `mem` (heap in use after a full collection: RSS moves in pages and by what
// the allocator keeps, too coarse for a few hundred bytes per subscription),
// start and stop a CPU profile around one measured window (`--cpu-prof` would
// profile the connects and warm-up too) and exit on `stop` or as soon as the
// orchestrator goes away.
import { writeFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { Session } from 'node:inspector/promises'
import type { Duplex } from 'node:stream'
import type { FromServer, ServerOptions, ToServer } from '../common.ts'

export interface Listening {
  port: number
}

export function runServer (start: (opts: ServerOptions) => Promise<Listening>): void {
  const send = process.send?.bind(process)
  if (send === undefined) {
    process.stderr.write('benchmark servers are started by bench/run.js (they need an IPC channel)\n')
    process.exit(2)
  }
  const reply = (msg: FromServer) => { send(msg) }
  const opts = JSON.parse(process.env.BENCH_SERVER_OPTIONS ?? '{}') as ServerOptions
  const gc = (globalThis as { gc?: () => void }).gc

  // no graceful close: the load generator has already dropped its sockets, and
  // exiting at once still writes a --cpu-prof profile
  process.on('disconnect', () => process.exit(0))
  let profiler: Session | null = null
  const failed = (what: string) => (err: unknown) => {
    process.stderr.write(`benchmark server: ${what} failed: ${(err as Error).stack ?? String(err)}\n`)
  }
  process.on('message', (msg: ToServer) => {
    if (msg.type === 'gc') {
      gc?.()
      gc?.()
      reply({ type: 'gc-done' })
    } else if (msg.type === 'mem') {
      gc?.()
      gc?.()
      const m = process.memoryUsage()
      reply({ type: 'mem', heapUsed: m.heapUsed, rss: m.rss })
    } else if (msg.type === 'profile-start') {
      const session = new Session()
      session.connect()
      profiler = session
      session.post('Profiler.enable')
        .then(() => session.post('Profiler.setSamplingInterval', { interval: msg.intervalUs }))
        .then(() => session.post('Profiler.start'))
        .then(() => reply({ type: 'profile-started' }), failed('profile-start'))
    } else if (msg.type === 'profile-stop') {
      const session = profiler
      profiler = null
      session?.post('Profiler.stop')
        .then(({ profile }) => {
          writeFileSync(msg.file, JSON.stringify(profile))
          session.disconnect()
          reply({ type: 'profile-done', file: msg.file })
        }, failed('profile-stop'))
    } else if (msg.type === 'stop') {
      process.exit(0)
    }
  })
  start(opts).then(
    (l) => reply({ type: 'listening', port: l.port }),
    (err: unknown) => {
      process.stderr.write(`benchmark server failed to start: ${(err as Error).stack ?? String(err)}\n`)
      process.exit(1)
    })
}

export function portOf (address: unknown): number {
  if (address !== null && typeof address === 'object' && 'port' in address) return (address as { port: number }).port
  throw new Error('server is not listening on a TCP port')
}

/** Refuses an upgrade with an HTTP error in the contract's shape and ends the socket (servers that answer upgrades themselves). */
export function refuseUpgrade (socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], message, code })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

/**
 * The bare floors' token check during the upgrade (HS256 in the Authorization
 * header, as Gatecast's bench clients send it): the user and `exp`, or null
 * once the socket was refused with 401.
 */
export function bearerIdentity (req: { headers: { authorization?: string } }, socket: Duplex, verify: (token: string) => unknown): { userId: string, exp: number | null } | null {
  const auth = req.headers.authorization
  if (auth === undefined || !auth.startsWith('Bearer ')) {
    refuseUpgrade(socket, 401, 'token_missing', 'missing token')
    return null
  }
  try {
    const claims = verify(auth.slice(7)) as { sub?: unknown, exp?: number }
    if (typeof claims.sub !== 'string') throw new Error('no sub')
    return { userId: claims.sub, exp: claims.exp ?? null }
  } catch {
    refuseUpgrade(socket, 401, 'token_invalid', 'invalid token')
    return null
  }
}
