// The Gatecast client: one channel, one socket, reconnected with backoff and
// resumed with `since`, its token refreshed in-band before it expires.
// No dependencies and no Node-only imports: in browsers it uses the native
// WebSocket, in Node pass the `ws` package's WebSocket as `WebSocket`.
// Only types come from the server's frames module (it loads TypeBox); at run
// time the one server module loaded is the dependency-free codes module
// (served beside this file as /demo/codes.js).
import type {
  ClientFrame, DirectFrame, ErrorFrame, MessageFrame, PresenceFrame, ReadyFrame, ServerFrame
} from '../src/protocol/frames.ts'
import { CloseCodes, ERROR_CODES, type CloseCode, type ErrorCode } from '../src/protocol/codes.ts'

export type { ClientFrame, CloseCode, DirectFrame, ErrorCode, ErrorFrame, MessageFrame, PresenceFrame, ReadyFrame, ServerFrame }
export { CloseCodes, ERROR_CODES }

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** Why `getToken()` is called. */
export type TokenReason =
  /** the first connection */
  | 'connect'
  /** a reconnect after the last token could not be reused (near expiry, or the last attempt failed before `ready`) */
  | 'reconnect'
  /** the server closed the socket with 4401: the token expired or was revoked */
  | 'expired'
  /** an in-band refresh some seconds before `expiresAt` */
  | 'refresh'

export type GetToken = (ctx: { reason: TokenReason }) => string | Promise<string>

export interface StateEvent {
  state: ClientState
  /** the previous state */
  from: ClientState
  /** on 'open' after a connect with `since`: true when every missed message was replayed, false when some are lost */
  recovered?: boolean
  /** on 'open': the `ready` frame */
  ready?: ReadyFrame
  /** close code of the socket that ended (1006: dropped without a close frame) */
  code?: number
  reason?: string
  /** on 'reconnecting': the attempt number (1 = first retry) and the delay before it, ms */
  attempt?: number
  delay?: number
}

/** An `error` frame from the server, or a problem on this side (`type: 'client'`). */
export type ClientErrorEvent = ErrorFrame | {
  type: 'client'
  code: 'token_failed' | 'refresh_failed' | 'socket_error' | 'bad_frame'
  message: string
  cause?: unknown
}

export interface Events {
  message: MessageFrame
  direct: DirectFrame
  presence: PresenceFrame
  state: StateEvent
  error: ClientErrorEvent
  refreshed: { expiresAt: number | null }
}

/** Rejection of `publish()`: an `error` frame for it, or the socket went away before its `ack`. */
export class PublishError extends Error {
  readonly code: ErrorCode | 'connection_lost' | 'closed'
  constructor (code: ErrorCode | 'connection_lost' | 'closed', message: string) {
    super(message)
    this.name = 'PublishError'
    this.code = code
  }
}

/** What the client needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: ((ev: any) => unknown) | null
  onmessage: ((ev: any) => unknown) | null
  onclose: ((ev: any) => unknown) | null
  onerror: ((ev: any) => unknown) | null
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: any) => WebSocketLike

export interface BackoffOptions {
  /** ms, the cap of the first retry's delay; default 500 */
  initial?: number
  /** ms, the largest cap; default 30 000 */
  max?: number
  /** growth of the cap per attempt; default 2 */
  factor?: number
}

export interface ConnectOptions {
  /** the gateway: `wss://host`, `https://host` (turned into wss) or a full `…/ws/<channel>` URL */
  url: string
  channel: string
  /** returns an access token (JWT); called for the first connection, after 4401, and before `expiresAt` */
  getToken: GetToken
  /** a WebSocket implementation; default `globalThis.WebSocket`. In Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor
  /**
   * How the token travels. 'protocol': subprotocols `['gatecast', 'bearer.<jwt>']` (browsers);
   * 'header': `Authorization: Bearer <jwt>` (needs an implementation taking `{ headers }`, like `ws`).
   * Default: 'header' when a WebSocket other than the global one is passed, else 'protocol'.
   */
  tokenTransport?: 'protocol' | 'header'
  /** resume after this message id (e.g. the `lastId` of an earlier client) */
  since?: string
  backoff?: BackoffOptions
  /** ms a connection attempt may take until `ready`; default 15 000 */
  connectTimeout?: number
  /** ms before `expiresAt` to refresh the token; default 30 000, at most a third of the time left */
  refreshBefore?: number
  /**
   * Client pings (`{"type":"ping"}`) to notice dead connections the browser cannot see: no frame within
   * `timeout` ms after one counts as a drop (1006). Default `{ interval: 25000, timeout: 10000 }`; `false`: off.
   * In browsers the `offline` event also counts as a drop, and `online` ends a backoff wait at once.
   */
  heartbeat?: { interval?: number, timeout?: number } | false
}

type Listener<K extends keyof Events> = (event: Events[K]) => void

export interface GatecastClient {
  readonly state: ClientState
  /** id of the last message delivered; handed back as `since` on reconnect */
  readonly lastId: string | undefined
  readonly channel: string
  /** the `ready` frame of the current connection (null before the first one) */
  readonly ready: ReadyFrame | null
  /** the current token's `exp`, seconds (null: no expiry or not yet known) */
  readonly expiresAt: number | null
  /**
   * Publishes on the channel; resolves with the message id from the `ack`. While not open the
   * frame waits and is sent once the socket is ready. Rejects with a PublishError on an `error`
   * frame for it, when the socket drops after sending but before the ack (the message may or may
   * not have been published), and on close().
   */
  publish (data: unknown): Promise<string>
  on<K extends keyof Events>(event: K, fn: Listener<K>): () => void
  /** drops the current socket and reconnects now (with `since`) */
  reconnect (): void
  /** closes for good: state 'closed', no reconnect */
  close (): void
}

// close codes after which reconnecting cannot help
const TERMINAL = new Set<number>([CloseCodes.policy, CloseCodes.tooLarge, CloseCodes.forbidden])
// our own close of a socket we gave up on
const ABANDONED = 4000
const OPEN = 1
// reuse a token for a reconnect only if it has this long left
const TOKEN_REUSE_MARGIN_MS = 10_000
const SEEN_IDS = 1000

interface Pending { data: unknown, ref: number, sent: boolean, resolve: (id: string) => void, reject: (err: Error) => void }

function socketUrl (url: string, channel: string, since: string | undefined): string {
  let base = url.replace(/^http(s?):/i, 'ws$1:')
  if (!/\/ws\/[^/]+$/.test(base.split('?')[0])) base = `${base.replace(/\/+$/, '')}/ws/${encodeURIComponent(channel)}`
  if (since === undefined) return base
  return `${base}${base.includes('?') ? '&' : '?'}since=${encodeURIComponent(since)}`
}

export function connect (options: ConnectOptions): GatecastClient {
  const globalWs = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  const Impl = options.WebSocket ?? globalWs
  if (Impl === undefined) throw new TypeError('no WebSocket implementation: pass one as `WebSocket` (in Node: the `ws` package)')
  const WS: WebSocketConstructor = Impl
  const transport = options.tokenTransport ?? (options.WebSocket !== undefined && options.WebSocket !== globalWs ? 'header' : 'protocol')
  const backoff = { initial: 500, max: 30_000, factor: 2, ...options.backoff }
  const refreshBefore = options.refreshBefore ?? 30_000
  const connectTimeout = options.connectTimeout ?? 15_000
  const heartbeat = options.heartbeat === false ? null : { interval: 25_000, timeout: 10_000, ...options.heartbeat }

  const listeners: { [K in keyof Events]: Set<Listener<K>> } = {
    message: new Set(), direct: new Set(), presence: new Set(), state: new Set(), error: new Set(), refreshed: new Set()
  }
  let state: ClientState = 'connecting'
  let lastId = options.since
  let ready: ReadyFrame | null = null
  let expiresAt: number | null = null
  let token: string | undefined
  // the token can be reused only if the attempt that used it got as far as `ready`
  let tokenReason: TokenReason | null = 'connect'
  let socket: WebSocketLike | null = null
  let attempt = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setTimeout> | undefined
  let pongTimer: ReturnType<typeof setTimeout> | undefined
  let openTimer: ReturnType<typeof setTimeout> | undefined
  let refreshing = false
  let nextRef = 1
  const pending: Pending[] = []
  const seen = new Set<string>()

  function emit<K extends keyof Events> (event: K, payload: Events[K]): void {
    for (const fn of [...listeners[event]]) {
      try {
        fn(payload)
      } catch (err) {
        // a listener's bug must not break the connection; surface it asynchronously
        setTimeout(() => { throw err }, 0)
      }
    }
  }

  function setState (next: ClientState, details: Omit<StateEvent, 'state' | 'from'> = {}): void {
    const from = state
    state = next
    emit('state', { state: next, from, ...details })
  }

  function clearTimers (): void {
    clearTimeout(retryTimer)
    clearTimeout(refreshTimer)
    clearTimeout(pingTimer)
    clearTimeout(pongTimer)
    clearTimeout(openTimer)
    retryTimer = refreshTimer = pingTimer = pongTimer = openTimer = undefined
  }

  function send (frame: ClientFrame): boolean {
    if (socket === null || socket.readyState !== OPEN || ready === null) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  function flush (): void {
    for (const p of pending) {
      if (!p.sent) p.sent = send({ type: 'publish', data: p.data, ref: p.ref })
    }
  }

  function settle (ref: unknown, fn: (p: Pending) => void): boolean {
    const i = pending.findIndex(p => p.ref === ref)
    if (i === -1) return false
    const [p] = pending.splice(i, 1)
    fn(p)
    return true
  }

  // --- connecting -------------------------------------------------------------------

  // a function, so TypeScript does not keep a narrowed `state` across awaits
  const closed = (): boolean => state === 'closed'

  async function open (): Promise<void> {
    retryTimer = undefined
    if (closed()) return
    let t = token
    if (tokenReason !== null || t === undefined || (expiresAt !== null && expiresAt * 1000 - Date.now() < TOKEN_REUSE_MARGIN_MS)) {
      try {
        t = await options.getToken({ reason: tokenReason ?? 'reconnect' })
      } catch (err) {
        if (closed()) return
        emit('error', { type: 'client', code: 'token_failed', message: `getToken failed: ${String((err as Error)?.message ?? err)}`, cause: err })
        scheduleReconnect(undefined, undefined)
        return
      }
      if (closed()) return
      token = t
    }
    // until this attempt reaches `ready`, the next one asks for a fresh token
    tokenReason = 'reconnect'
    const url = socketUrl(options.url, options.channel, lastId)
    let ws: WebSocketLike
    try {
      ws = transport === 'header'
        ? new WS(url, undefined, { headers: { authorization: `Bearer ${t}` } })
        : new WS(url, ['gatecast', `bearer.${t}`])
    } catch (err) {
      emit('error', { type: 'client', code: 'socket_error', message: String((err as Error)?.message ?? err), cause: err })
      scheduleReconnect(undefined, undefined)
      return
    }
    socket = ws
    ws.onmessage = (ev: { data: unknown }) => { if (socket === ws) onFrame(ev.data) }
    ws.onerror = (ev: { message?: string, error?: unknown }) => {
      if (socket === ws) emit('error', { type: 'client', code: 'socket_error', message: ev?.message ?? 'WebSocket error', cause: ev?.error })
    }
    ws.onclose = (ev: { code?: number, reason?: string }) => {
      if (socket !== ws) return
      onClosed(typeof ev?.code === 'number' ? ev.code : 1006, String(ev?.reason ?? ''))
    }
    // a handshake that hangs (a black-holed network) counts as a failed attempt
    openTimer = setTimeout(() => {
      openTimer = undefined
      if (socket !== ws || ready !== null) return
      detach()
      onClosed(1006, 'connect timeout')
    }, connectTimeout)
  }

  function delayFor (n: number): number {
    const cap = Math.min(backoff.max, backoff.initial * Math.pow(backoff.factor, n - 1))
    return Math.round(Math.random() * cap)
  }

  function scheduleReconnect (code: number | undefined, reason: string | undefined, delay?: number): void {
    attempt++
    const ms = delay ?? delayFor(attempt)
    setState('reconnecting', { attempt, delay: ms, ...(code !== undefined ? { code, reason } : {}) })
    retryTimer = setTimeout(() => { open().catch(() => {}) }, ms)
  }

  function detach (): void {
    const ws = socket
    socket = null
    if (ws === null) return
    ws.onmessage = ws.onopen = ws.onclose = null
    // `ws` emits an error when a handshake is aborted, and an error without a listener throws
    ws.onerror = () => {}
    try {
      ws.close(ABANDONED, 'abandoned by the client')
    } catch {}
  }

  function onClosed (code: number, reason: string, delay?: number): void {
    const wasReady = ready !== null
    socket = null
    ready = null
    clearTimers()
    refreshing = false
    // a publish that was sent but not acked may or may not have gone out: its caller decides
    for (const p of pending.filter(p => p.sent)) {
      settle(p.ref, p => p.reject(new PublishError('connection_lost', 'connection lost before the ack')))
    }
    if (TERMINAL.has(code)) {
      stop(code, reason)
      return
    }
    if (code === CloseCodes.unauthorized) {
      token = undefined
      tokenReason = 'expired'
    } else if (wasReady) {
      tokenReason = null
    }
    scheduleReconnect(code, reason, delay)
  }

  function stop (code: number | undefined, reason: string | undefined): void {
    clearTimers()
    detach()
    ready = null
    for (const p of pending.splice(0)) p.reject(new PublishError('closed', 'client closed'))
    removeWindowListeners()
    if (state !== 'closed') setState('closed', code !== undefined ? { code, reason } : {})
  }

  // --- frames -----------------------------------------------------------------------

  function onFrame (raw: unknown): void {
    let frame: ServerFrame
    try {
      frame = JSON.parse(typeof raw === 'string' ? raw : String(raw)) as ServerFrame
    } catch {
      emit('error', { type: 'client', code: 'bad_frame', message: 'invalid JSON from the server' })
      return
    }
    clearTimeout(pongTimer)
    pongTimer = undefined
    switch (frame.type) {
      case 'ready':
        onReady(frame)
        break
      case 'message':
        if (seen.has(frame.id)) break
        seen.add(frame.id)
        if (seen.size > SEEN_IDS) seen.delete(seen.values().next().value as string)
        lastId = frame.id
        emit('message', frame)
        break
      case 'direct':
        emit('direct', frame)
        break
      case 'presence':
        emit('presence', frame)
        break
      case 'ack':
        settle(frame.ref, p => p.resolve(frame.id))
        break
      case 'refreshed':
        refreshing = false
        expiresAt = frame.expiresAt
        scheduleRefresh()
        emit('refreshed', { expiresAt: frame.expiresAt })
        break
      case 'error':
        if (frame.ref !== undefined && settle(frame.ref, p => p.reject(new PublishError(frame.code, frame.message)))) break
        if (frame.ref === undefined && refreshing) {
          // the refresh was refused; try again shortly, before the grace runs out
          refreshing = false
          clearTimeout(refreshTimer)
          refreshTimer = setTimeout(refresh, 5000)
        }
        emit('error', frame)
        break
      case 'pong':
        break
    }
  }

  function onReady (frame: ReadyFrame): void {
    clearTimeout(openTimer)
    openTimer = undefined
    ready = frame
    expiresAt = frame.expiresAt
    tokenReason = null
    attempt = 0
    scheduleRefresh()
    schedulePing()
    setState('open', { ready: frame, ...(frame.recovered !== undefined ? { recovered: frame.recovered } : {}) })
    flush()
  }

  // --- token refresh and heartbeat -------------------------------------------------------

  function scheduleRefresh (): void {
    clearTimeout(refreshTimer)
    refreshTimer = undefined
    if (expiresAt === null) return
    const left = expiresAt * 1000 - Date.now()
    const lead = Math.min(refreshBefore, Math.max(0, left / 3))
    refreshTimer = setTimeout(refresh, Math.max(0, left - lead))
  }

  function refresh (): void {
    refreshTimer = undefined
    if (ready === null || refreshing) return
    refreshing = true
    const ws = socket
    Promise.resolve()
      .then(() => options.getToken({ reason: 'refresh' }))
      .then(t => {
        if (socket !== ws || ready === null) return
        token = t
        send({ type: 'refresh', token: t })
      }, (err: unknown) => {
        refreshing = false
        if (socket !== ws || ready === null) return
        emit('error', { type: 'client', code: 'refresh_failed', message: `getToken failed: ${String((err as Error)?.message ?? err)}`, cause: err })
        refreshTimer = setTimeout(refresh, 5000)
      })
  }

  function schedulePing (): void {
    if (heartbeat === null) return
    clearTimeout(pingTimer)
    pingTimer = setTimeout(ping, heartbeat.interval)
  }

  function ping (): void {
    if (heartbeat === null || ready === null) return
    if (pongTimer === undefined && send({ type: 'ping' })) {
      // any frame counts as an answer (see onFrame)
      pongTimer = setTimeout(() => {
        pongTimer = undefined
        if (ready === null) return
        detach()
        onClosed(1006, 'heartbeat timeout')
      }, heartbeat.timeout)
    }
    schedulePing()
  }

  // --- browser network events ----------------------------------------------------------

  const win = globalThis as { addEventListener?: (type: string, fn: () => void) => void, removeEventListener?: (type: string, fn: () => void) => void }
  const onOnline = (): void => {
    if (state === 'reconnecting' && retryTimer !== undefined) {
      clearTimeout(retryTimer)
      retryTimer = undefined
      open().catch(() => {})
    } else if (state === 'open') {
      // the socket may have died meanwhile: find out now
      clearTimeout(pingTimer)
      ping()
    }
  }
  // a socket rarely learns that the network went away; the browser does
  const onOffline = (): void => {
    if (ready === null) return
    detach()
    onClosed(1006, 'network offline')
  }
  function removeWindowListeners (): void {
    if (typeof win.removeEventListener !== 'function') return
    win.removeEventListener('online', onOnline)
    win.removeEventListener('offline', onOffline)
  }
  if (typeof win.addEventListener === 'function') {
    win.addEventListener('online', onOnline)
    win.addEventListener('offline', onOffline)
  }

  open().catch(() => {})

  return {
    get state () { return state },
    get lastId () { return lastId },
    get channel () { return options.channel },
    get ready () { return ready },
    get expiresAt () { return expiresAt },
    publish (data: unknown): Promise<string> {
      if (state === 'closed') return Promise.reject(new PublishError('closed', 'client closed'))
      return new Promise((resolve, reject) => {
        const p: Pending = { data, ref: nextRef++, sent: false, resolve, reject }
        pending.push(p)
        p.sent = send({ type: 'publish', data, ref: p.ref })
      })
    },
    on (event, fn) {
      const set = listeners[event] as Set<typeof fn>
      set.add(fn)
      return () => { set.delete(fn) }
    },
    reconnect (): void {
      if (state === 'closed') return
      if (state === 'reconnecting' && retryTimer !== undefined) {
        onOnline()
        return
      }
      if (socket === null) return
      detach()
      onClosed(1006, 'reconnect requested', 0)
    },
    close (): void {
      stop(undefined, undefined)
    }
  }
}

export default connect
