// The sockets of this node: who is on which channel, fan-out of engine
// deliveries, liveness pings, token expiry, slow consumers and shutdown.
// deliver() is the per-message path: one Buffer per publish, then a plain
// loop of sends — no per-socket JSON, closures or promises.
import type { Logger } from '../config/logger.ts'
import type { WebSocket } from 'ws'
import type { ChannelOptions } from './channels.ts'
import type { ControlMessage, Engine, EngineListener } from '../engine/types.ts'
import type { Stats } from './stats.ts'
import { frameText } from '../protocol/wire.ts'
import { CloseCodes } from '../protocol/frames.ts'

const kConn = Symbol('gatecast.connection')
type TaggedSocket = WebSocket & { [kConn]?: Connection }

const TEXT = { binary: false } as const

function payloadOf (framed: Buffer): Buffer {
  const len = framed[1] & 0x7f
  return framed.subarray(len < 126 ? 2 : len === 126 ? 4 : 10)
}

// What the fast path needs of ws's internals, checked per socket at adoption.
interface WsSender { _state?: unknown, _queue?: unknown[] }
interface WsInternals {
  _socket?: import('node:net').Socket
  _sender?: WsSender
  _extensions?: Record<string, unknown>
}

export class Connection {
  readonly id: string
  readonly ws: WebSocket
  readonly userId: string
  readonly channel: string
  readonly opts: ChannelOptions
  readonly remoteAddress: string
  readonly openedAt = Date.now()
  jti: string | undefined
  /** token `exp`, seconds */
  expiresAt: number | undefined
  alive = true
  closing = false
  /**
   * Until `ready` is out, frames wait here as [seq, frame, seq, frame, …]:
   * `ready` stays first, and live frames meet a `since` replay without a gap or
   * a duplicate. seq 0: not from history (acks, directs, presence).
   */
  pending: Array<number | Buffer> | null = []
  tokens: number
  lastRefill = Date.now()
  rejected = 0
  badFrames = 0
  framesIn = 0
  framesOut = 0
  hub: Hub | null = null
  /** the TCP socket when ready-made frames may be written to it directly, else null (ws.send is used) */
  raw: import('node:net').Socket | null = null
  /** ws's sender, whose idle state allows the direct write (set with raw) */
  sender: WsSender | null = null
  corked = false
  /** bytes written while corked in this turn: not yet offered to the kernel, so no backlog yet */
  corkedBytes = 0

  constructor (init: { id: string, ws: WebSocket, userId: string, channel: string, opts: ChannelOptions, remoteAddress: string, jti?: string, expiresAt?: number, burst: number }) {
    this.id = init.id
    this.ws = init.ws
    this.userId = init.userId
    this.channel = init.channel
    this.opts = init.opts
    this.remoteAddress = init.remoteAddress
    this.jti = init.jti
    this.expiresAt = init.expiresAt
    this.tokens = init.burst
  }
}

export interface HubOptions {
  engine: Engine
  metrics: Stats
  log: Logger
  sendBuffer: number
  pingInterval: number
  expiryGrace: number
  onFrame: (conn: Connection, data: Buffer, isBinary: boolean) => void
  onClosed: (conn: Connection, code: number) => void
  onPresenceLost: (channel: string, userId: string) => void
}

export class Hub implements EngineListener {
  readonly #byChannel = new Map<string, Set<Connection>>()
  readonly #byUser = new Map<string, Set<Connection>>()
  readonly #all = new Set<Connection>()
  // every joiner awaits the channel's one subscription, also while it is in flight
  readonly #subscriptions = new Map<string, Promise<void>>()
  // sockets corked in this event-loop turn, uncorked together at its end
  readonly #corked: Connection[] = []
  readonly #uncorkAll = (): void => {
    const list = this.#corked.splice(0)
    for (const conn of list) {
      conn.corked = false
      conn.corkedBytes = 0
      conn.raw?.uncork()
    }
  }

  readonly #o: HubOptions
  readonly #timers: NodeJS.Timeout[] = []

  constructor (o: HubOptions) {
    this.#o = o
    this.#timers.push(setInterval(() => this.#pingAll(), o.pingInterval * 1000).unref())
    this.#timers.push(setInterval(() => this.#expire(), 1000).unref())
  }

  get size (): number {
    return this.#all.size
  }

  socketsByNamespace (): Map<string, number> {
    const out = new Map<string, number>()
    for (const set of this.#byChannel.values()) {
      const first = set.values().next().value
      if (first === undefined) continue
      const ns = first.opts.namespace ?? ''
      out.set(ns, (out.get(ns) ?? 0) + set.size)
    }
    return out
  }

  // --- registry ---------------------------------------------------------------

  /** Takes the socket under management: listeners, user index. Not yet on the channel. */
  adopt (conn: Connection): void {
    const ws = conn.ws as TaggedSocket
    ws[kConn] = conn
    conn.hub = this
    const internals = ws as unknown as WsInternals
    const sender = internals._sender
    // the fast path writes frames ws would have written itself; it needs ws's
    // sender idle (no compression, nothing queued), which holds without permessage-deflate
    if (internals._socket !== undefined && sender !== undefined && Array.isArray(sender._queue) && sender._state === 0 &&
        internals._extensions?.['permessage-deflate'] === undefined) {
      conn.raw = internals._socket
      conn.sender = sender
    }
    // the upgrade route corked the socket before the 101 went out: it joins this turn's
    // corked sockets as if #write had corked it, so `ready` leaves in the same write and
    // the slow-consumer check can flush it
    const socket = internals._socket
    if (socket !== undefined && socket.writableCorked > 0) {
      if (conn.raw === null) {
        socket.uncork()
      } else {
        this.#holdCorked(conn)
      }
    }
    ws.on('message', onMessage)
    ws.on('pong', onPong)
    ws.on('close', onClose)
    if (ws.listenerCount('error') === 0) ws.on('error', onSocketError)
    this.#all.add(conn)
    let mine = this.#byUser.get(conn.userId)
    if (mine === undefined) this.#byUser.set(conn.userId, (mine = new Set()))
    mine.add(conn)
  }

  /** Puts the socket on its channel; resolves once this node receives the channel's deliveries. */
  async join (conn: Connection): Promise<void> {
    // closed while its setup awaited the engine: it must not linger on the channel
    if (conn.closing) return
    let set = this.#byChannel.get(conn.channel)
    if (set === undefined) this.#byChannel.set(conn.channel, (set = new Set()))
    set.add(conn)
    let subscribed = this.#subscriptions.get(conn.channel)
    if (subscribed === undefined) {
      subscribed = this.#o.engine.broker.subscribe(conn.channel)
      this.#subscriptions.set(conn.channel, subscribed)
      const mine = subscribed
      // a failed subscription is retried by the next joiner, unless a newer one replaced it
      subscribed.catch(() => { if (this.#subscriptions.get(conn.channel) === mine) this.#subscriptions.delete(conn.channel) })
    }
    await subscribed
  }

  #forget (conn: Connection): void {
    if (!this.#all.delete(conn)) return
    const mine = this.#byUser.get(conn.userId)
    if (mine !== undefined) {
      mine.delete(conn)
      if (mine.size === 0) this.#byUser.delete(conn.userId)
    }
    const set = this.#byChannel.get(conn.channel)
    if (set !== undefined && set.delete(conn) && set.size === 0) {
      this.#byChannel.delete(conn.channel)
      this.#subscriptions.delete(conn.channel)
      this.#o.engine.broker.unsubscribe(conn.channel).catch((err: unknown) => this.#o.log.warn({ err, channel: conn.channel }, 'unsubscribe failed'))
    }
  }

  frame (conn: Connection, data: Buffer, isBinary: boolean): void {
    this.#o.metrics.framesIn++
    this.#o.onFrame(conn, data, isBinary)
  }

  socketError (conn: Connection, err: Error): void {
    this.#o.log.debug({ err, connectionId: conn.id }, 'websocket error')
  }

  handleClose (conn: Connection, code: number): void {
    conn.closing = true
    this.#forget(conn)
    this.#o.onClosed(conn, code)
  }

  // --- sending ----------------------------------------------------------------

  /** One frame to one socket (ready, ack, error, pong…): held back until `ready` is out. */
  send (conn: Connection, payload: string): void {
    this.#offer(conn, 0, frameText(payload))
  }

  /** The same frame to each socket; `seq` is its history sequence (0: not from history). */
  #offerAll (conns: Iterable<Connection>, seq: number, framed: Buffer): void {
    for (const conn of conns) this.#offer(conn, seq, framed)
  }

  /** Written now, or kept for `open` while the socket's `ready` is not out. */
  #offer (conn: Connection, seq: number, framed: Buffer): void {
    if (conn.pending !== null) conn.pending.push(seq, framed)
    else this.#write(conn, framed)
  }

  /** Joins this turn's corked sockets, which are uncorked together at its end. */
  #holdCorked (conn: Connection): void {
    conn.corked = true
    if (this.#corked.push(conn) === 1) setImmediate(this.#uncorkAll)
  }

  /**
   * Writes a ready-made frame. The socket stays corked until the end of the
   * event-loop turn, so frames that arrive together — several publishes in one
   * read, publishes from many sockets in one poll phase, one Redis reply
   * carrying many messages — leave in one write. (Flushing after each I/O
   * callback instead measured the same when publishes are spread out, and lost
   * all batching when a room's members publish together: 1.03× ws CPU per
   * delivery against 0.62×; docs/benchmarks.md.)
   */
  #write (conn: Connection, framed: Buffer): void {
    if (conn.closing) return
    const raw = conn.raw
    const sender = conn.sender
    let buffered: number
    if (raw === null || sender === null || sender._state !== 0 || sender._queue?.length !== 0 || conn.ws.readyState !== 1) {
      conn.ws.send(payloadOf(framed), TEXT)
      buffered = conn.ws.bufferedAmount
    } else {
      if (!conn.corked) {
        raw.cork()
        this.#holdCorked(conn)
      }
      raw.write(framed)
      conn.corkedBytes += framed.length
      // ws's bufferedAmount, less its sender's queue, which is empty while the sender is idle
      buffered = raw.writableLength
    }
    conn.framesOut++
    this.#o.metrics.framesOut++
    if (buffered > this.#o.sendBuffer) {
      // what waits for this turn's flush is no backlog yet: offer it to the kernel, then judge
      if (conn.corkedBytes > 0 && raw !== null) {
        raw.uncork()
        raw.cork()
        conn.corkedBytes = 0
      }
      if (conn.ws.bufferedAmount > this.#o.sendBuffer) this.close(conn, CloseCodes.slowConsumer, 'slow consumer')
    }
  }

  /** Stops all traffic to the socket at once and starts the close handshake. */
  close (conn: Connection, code: number, reason: string): void {
    if (conn.closing) return
    conn.closing = true
    this.#forget(conn)
    conn.ws.close(code, reason)
  }

  deliver (channel: string, seq: number, frame: string, ts: number): void {
    const set = this.#byChannel.get(channel)
    if (set === undefined) return
    if (ts > 0) this.#o.metrics.delivery.observe((Date.now() - ts) / 1000)
    this.#o.metrics.fanout.observe(set.size)
    this.#offerAll(set, seq, frameText(frame))
  }

  /**
   * Goes live: `ready`, the replay, then what waited, less what the replay
   * already held (history sequence up to `top`).
   */
  open (conn: Connection, ready: string, replay: readonly string[], top: number): void {
    const pending = conn.pending
    conn.pending = null
    this.#write(conn, frameText(ready))
    for (const frame of replay) this.#write(conn, frameText(frame))
    if (pending === null) return
    for (let i = 0; i < pending.length; i += 2) {
      const seq = pending[i] as number
      if (seq === 0 || seq > top) this.#write(conn, pending[i + 1] as Buffer)
    }
  }

  control (msg: ControlMessage): void {
    switch (msg.kind) {
      case 'all':
        this.#offerAll(this.#all, 0, frameText(msg.frame))
        break
      case 'user': {
        const mine = this.#byUser.get(msg.userId)
        if (mine !== undefined) this.#offerAll(mine, 0, frameText(msg.frame))
        break
      }
      case 'kick':
        for (const conn of this.#byUser.get(msg.userId) ?? []) this.close(conn, CloseCodes.forbidden, 'disconnected by the server')
        break
      case 'revoke':
        for (const conn of this.#byUser.get(msg.userId) ?? []) {
          if (conn.jti === msg.jti) this.close(conn, CloseCodes.unauthorized, 'token revoked')
        }
        break
    }
  }

  presenceLost (channel: string, userId: string): void {
    this.#o.onPresenceLost(channel, userId)
  }

  // --- housekeeping -----------------------------------------------------------

  #pingAll (): void {
    for (const conn of this.#all) {
      if (!conn.alive) {
        conn.closing = true
        conn.ws.terminate()
        continue
      }
      conn.alive = false
      conn.ws.ping()
    }
  }

  #expire (): void {
    const limit = Date.now() / 1000 - this.#o.expiryGrace
    for (const conn of this.#all) {
      if (conn.expiresAt !== undefined && conn.expiresAt < limit) this.close(conn, CloseCodes.unauthorized, 'token expired')
    }
  }

  /** Closes every socket with 1001, a batch per event-loop turn, and waits for them to go (bounded). */
  async closeAll (deadlineMs: number): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    const conns = [...this.#all]
    const closing = conns.map(c => new Promise<void>(resolve => {
      if (c.ws.readyState === c.ws.CLOSED) resolve()
      else c.ws.once('close', () => resolve())
    }))
    for (let i = 0; i < conns.length; i += 500) {
      for (const conn of conns.slice(i, i + 500)) this.close(conn, CloseCodes.shuttingDown, 'server shutting down')
      await new Promise(resolve => setImmediate(resolve))
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(closing),
      new Promise(resolve => { timer = setTimeout(resolve, deadlineMs) })
    ])
    clearTimeout(timer)
    for (const conn of conns) conn.ws.terminate()
  }
}

// Shared listeners: `this` is the socket, so no closure is kept per socket.
function onMessage (this: TaggedSocket, data: Buffer, isBinary: boolean): void {
  const conn = this[kConn]
  if (conn === undefined || conn.closing) return
  conn.alive = true
  conn.framesIn++
  conn.hub?.frame(conn, data, isBinary)
}

function onPong (this: TaggedSocket): void {
  const conn = this[kConn]
  if (conn !== undefined) conn.alive = true
}

/**
 * The shared 'error' listener of every socket (logs at debug once the hub has it).
 * ws reports protocol errors (1009, 1007, 1002) after it has sent the close frame itself.
 */
export function onSocketError (this: WebSocket, err: Error): void {
  const conn = (this as TaggedSocket)[kConn]
  conn?.hub?.socketError(conn, err)
}

function onClose (this: TaggedSocket, code: number): void {
  const conn = this[kConn]
  if (conn === undefined) return
  conn.hub?.handleClose(conn, code)
}
