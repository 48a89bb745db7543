// The core's Transport over a `ws` WebSocket: the only module that touches ws
// internals. It writes ready-made frames straight to the TCP socket while ws's
// sender is idle, corks sockets for the rest of the event-loop turn so frames
// that arrive together leave in one write, and lets go of the HTTP upgrade
// request once the socket is open.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Transport, TransportHandler } from '../core/transport.ts'

// the session that handles the socket's events, found by the shared listeners
const kHandler = Symbol('gatecast.handler')
type TaggedSocket = WebSocket & { [kHandler]?: TransportHandler }

const TEXT = { binary: false } as const

// What the fast path needs of ws's internals, checked per socket at adoption.
interface WsSender { _state?: unknown, _queue?: unknown[] }
interface WsInternals {
  _socket?: Socket
  _sender?: WsSender
  _extensions?: Record<string, unknown>
}

function payloadOf (framed: Buffer): Buffer {
  const len = framed[1] & 0x7f
  return framed.subarray(len < 126 ? 2 : len === 126 ? 4 : 10)
}

// Sockets corked in this event-loop turn, uncorked together at its end.
const corked: WsTransport[] = []
function uncorkAll (): void {
  for (const t of corked.splice(0)) t.flush()
}

/**
 * Cork the TCP socket of an upgrade before the 101 goes out: the response and
 * `ready` then leave in one write (the transport takes the cork over).
 */
export function corkUpgrade (tcp: Socket | null | undefined): void {
  tcp?.cork()
}

/**
 * An open socket needs nothing of the HTTP request that opened it, yet two things
 * would keep that request alive as long as the socket: @fastify/websocket's error
 * listener (a closure over the Fastify request and reply) and the upgrade's
 * ServerResponse, still attached to the TCP socket. Together they are a large part
 * of an idle socket's memory. The transport's shared listener takes the closure's place.
 */
export function fromUpgrade (ws: WebSocket, tcp: Socket | null | undefined): WsTransport {
  ws.removeAllListeners('error')
  const res = (tcp as (Socket & { _httpMessage?: ServerResponse | null }) | null | undefined)?._httpMessage
  if (tcp != null && res != null) res.detachSocket(tcp)
  return new WsTransport(ws)
}

/** A set-up that failed before the session went live: nothing may stay corked, and the client learns why. */
export function failUpgrade (ws: WebSocket, tcp: Socket | null | undefined): void {
  // once the transport holds the cork, one more uncork only flushes early
  if (tcp != null && tcp.writableCorked > 0) tcp.uncork()
  ws.close(1011, 'internal error')
}

export class WsTransport implements Transport {
  /** the socket itself, for the edge (tests, diagnostics); the core never sees it */
  readonly ws: WebSocket
  /** the TCP socket when ready-made frames may be written to it directly, else null (ws.send is used) */
  readonly #raw: Socket | null = null
  /** ws's sender, whose idle state allows the direct write (set with raw) */
  readonly #sender: WsSender | null = null
  #corked = false
  /** bytes written while corked in this turn: not yet offered to the kernel, so no backlog yet */
  #corkedBytes = 0

  constructor (ws: WebSocket) {
    this.ws = ws
    const internals = ws as unknown as WsInternals
    const sender = internals._sender
    const socket = internals._socket
    // the fast path writes frames ws would have written itself; it needs ws's
    // sender idle (no compression, nothing queued), which holds without permessage-deflate
    if (socket !== undefined && sender !== undefined && Array.isArray(sender._queue) && sender._state === 0 &&
        internals._extensions?.['permessage-deflate'] === undefined) {
      this.#raw = socket
      this.#sender = sender
    }
    // corked before the 101 went out (corkUpgrade): it joins this turn's corked
    // sockets as if write() had corked it, so `ready` leaves in the same write and
    // the slow-consumer check can flush it
    if (socket !== undefined && socket.writableCorked > 0) {
      if (this.#raw === null) socket.uncork()
      else this.#hold()
    }
    ws.on('message', onMessage)
    ws.on('pong', onPong)
    ws.on('close', onClose)
    if (ws.listenerCount('error') === 0) ws.on('error', onError)
  }

  /**
   * Whether ready-made frames go straight to the TCP socket. False is still
   * correct (every write goes through ws.send) but slower, and means ws's
   * internals no longer look as this module expects: a ws upgrade that renamed
   * them fails test/routes/ws/fast-path.test.ts instead of going slow silently.
   */
  get direct (): boolean {
    return this.#raw !== null
  }

  bind (handler: TransportHandler): void {
    (this.ws as TaggedSocket)[kHandler] = handler
  }

  write (framed: Buffer): number {
    const raw = this.#raw
    const sender = this.#sender
    const ws = this.ws
    if (raw === null || sender === null || sender._state !== 0 || sender._queue?.length !== 0 || ws.readyState !== 1) {
      ws.send(payloadOf(framed), TEXT)
      return ws.bufferedAmount
    }
    if (!this.#corked) {
      raw.cork()
      this.#hold()
    }
    raw.write(framed)
    this.#corkedBytes += framed.length
    // ws's bufferedAmount, less its sender's queue, which is empty while the sender is idle
    return raw.writableLength
  }

  backlog (): number {
    const raw = this.#raw
    if (this.#corkedBytes > 0 && raw !== null) {
      raw.uncork()
      raw.cork()
      this.#corkedBytes = 0
    }
    return this.ws.bufferedAmount
  }

  /**
   * The end of the turn: what was written while corked goes out now. (Flushing
   * after each I/O callback instead measured the same when publishes are spread
   * out, and lost all batching when a room's members publish together: 1.03× ws
   * CPU per delivery against 0.62×; docs/benchmarks.md.)
   */
  flush (): void {
    this.#corked = false
    this.#corkedBytes = 0
    this.#raw?.uncork()
  }

  ping (): void {
    this.ws.ping()
  }

  close (code: number, reason: string): void {
    this.ws.close(code, reason)
  }

  terminate (): void {
    this.ws.terminate()
  }

  #hold (): void {
    this.#corked = true
    if (corked.push(this) === 1) setImmediate(uncorkAll)
  }
}

// Shared listeners: `this` is the socket, so no closure is kept per socket.
function onMessage (this: TaggedSocket, data: Buffer, isBinary: boolean): void {
  this[kHandler]?.onMessage(data, isBinary)
}

function onPong (this: TaggedSocket): void {
  this[kHandler]?.onPong()
}

function onClose (this: TaggedSocket, code: number): void {
  this[kHandler]?.onClose(code)
}

/** ws reports protocol errors (1009, 1007, 1002) after it has sent the close frame itself. */
function onError (this: TaggedSocket, err: Error): void {
  this[kHandler]?.onError(err)
}
