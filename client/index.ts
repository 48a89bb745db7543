// The Gatecast client: one socket carrying any number of channels, reconnected
// with backoff; after a reconnect every channel resumes with `since`, and the
// token is refreshed in-band before it expires.
// No dependencies and no Node-only imports: in browsers it uses the native
// WebSocket, in Node pass the `ws` package's WebSocket as `WebSocket`.
// Only types come from the server's frames module (it loads TypeBox); at run
// time the one server module loaded is the dependency-free codes module
// (served beside this file as /demo/codes.js).
import type {
  ClientFrame, DirectFrame, ErrorFrame, MessageFrame, PresenceFrame, ReadyFrame, ServerFrame, SubscribedFrame, UnsubscribedFrame
} from '../src/protocol/frames.ts'
import { CloseCodes, ERROR_CODES, type CloseCode, type ErrorCode } from '../src/protocol/codes.ts'

export type {
  ClientFrame, CloseCode, DirectFrame, ErrorCode, ErrorFrame, MessageFrame, PresenceFrame, ReadyFrame, ServerFrame, SubscribedFrame, UnsubscribedFrame
}
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
  /**
   * on 'open' after a connect with `since` on the path channel: true when every missed message was
   * replayed, false when some are lost (other channels report theirs on their subscription's 'subscribed')
   */
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
  /** a message of any channel of this socket (each subscription also gets its own) */
  message: MessageFrame
  direct: DirectFrame
  /** presence of any channel of this socket */
  presence: PresenceFrame
  state: StateEvent
  /** `error` frames that no publish, subscribe or subscription claims, and problems on this side */
  error: ClientErrorEvent
  refreshed: { expiresAt: number | null }
  /** the server subscribed this socket to a channel (server API): a new subscription */
  subscription: Subscription
}

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed'

export interface SubscribedEvent {
  /** who made this subscription happen: 'client' (a subscribe or the path channel) or 'server' (the server API) */
  by: 'client' | 'server'
  /** present when the subscribe carried `since`: true when every missed message follows, false when some are lost */
  recovered?: boolean
}

/**
 * Why a subscription ended: 'client' unsubscribe(); 'server' the server API removed it;
 * 'forbidden' a refreshed token no longer allows it; 'refused' the server answered the
 * subscribe with an error (in `error`); 'closed' the client was closed.
 */
export type UnsubscribeReason = UnsubscribedFrame['reason'] | 'refused' | 'closed'

export interface UnsubscribedEvent {
  reason: UnsubscribeReason
  /** with 'refused': the error frame */
  error?: ErrorFrame
}

export interface SubscriptionEvents {
  message: MessageFrame
  presence: PresenceFrame
  /** after each subscribe is answered, the first and every one after a reconnect */
  subscribed: SubscribedEvent
  /** once: the subscription has ended and will not come back */
  unsubscribed: UnsubscribedEvent
  /** an `error` frame for this channel: a refused (re)subscribe or unsubscribe, or one naming the channel */
  error: ErrorFrame
}

type SubscriptionListener<K extends keyof SubscriptionEvents> = (event: SubscriptionEvents[K]) => void

/** One channel on the client's socket. */
export interface Subscription {
  readonly channel: string
  /** 'subscribing' until the server answers, and again while the socket reconnects */
  readonly state: SubscriptionState
  /** who created it: 'client' (`subscribe()` or the path channel) or 'server' (the server API) */
  readonly by: 'client' | 'server'
  /** id of the last message delivered on this channel; sent back as `since` on every resubscribe */
  readonly lastId: string | undefined
  /** `recovered` of the latest subscribe answer (undefined when it had no `since`) */
  readonly recovered: boolean | undefined
  on<K extends keyof SubscriptionEvents>(event: K, fn: SubscriptionListener<K>): () => void
  /**
   * Publishes on this channel; resolves with the message id from the `ack` (null when the
   * application backend took the message over and dropped it: `skip`). Waits while the
   * subscription is 'subscribing'. Rejects with a PublishError like the client's publish(),
   * and with code 'unsubscribed' when the subscription ends before it was sent.
   */
  publish (data: unknown): Promise<string | null>
  /** Leaves the channel; resolves once the server confirms (at once when no socket is open). */
  unsubscribe (): Promise<void>
  /**
   * Resolves when the subscription is (or next becomes) 'subscribed'; rejects with a
   * SubscriptionError when it ends first, e.g. the subscribe was refused.
   */
  whenSubscribed (): Promise<SubscribedEvent>
}

/** Rejection of `publish()`: an `error` frame for it, or the socket went away before its `ack`. */
export class PublishError extends Error {
  readonly code: ErrorCode | 'connection_lost' | 'closed' | 'unsubscribed'
  constructor (code: ErrorCode | 'connection_lost' | 'closed' | 'unsubscribed', message: string) {
    super(message)
    this.name = 'PublishError'
    this.code = code
  }
}

/** Rejection of `whenSubscribed()`: the code of the refusing `error` frame, or why the subscription ended. */
export class SubscriptionError extends Error {
  readonly code: ErrorCode | 'unsubscribed' | 'closed'
  readonly channel: string
  constructor (code: ErrorCode | 'unsubscribed' | 'closed', channel: string, message: string) {
    super(message)
    this.name = 'SubscriptionError'
    this.code = code
    this.channel = channel
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
  /**
   * The gateway: `wss://host`, `https://host` (turned into wss), a `…/ws` URL, or a full
   * `…/ws/<channel>` URL (its channel is the path channel)
   */
  url: string
  /**
   * The path channel: the socket opens on `/ws/<channel>` already subscribed to it, and
   * `publish()`, `lastId` and `since` refer to it. Without one the socket opens on `/ws` and
   * channels come from `subscribe()` (and from the server API).
   */
  channel?: string
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
  /** resume the path channel after this message id (e.g. the `lastId` of an earlier client) */
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

export interface SubscribeOptions {
  /** replay every message after this id first (e.g. a `lastId` kept from an earlier session) */
  since?: string
}

type Listener<K extends keyof Events> = (event: Events[K]) => void

export interface GatecastClient {
  readonly state: ClientState
  /** id of the last message delivered on the path channel; handed back as `since` on reconnect */
  readonly lastId: string | undefined
  /** the path channel (undefined on a socket opened on `/ws`) */
  readonly channel: string | undefined
  /** the `ready` frame of the current connection (null before the first one) */
  readonly ready: ReadyFrame | null
  /** the current token's `exp`, seconds (null: no expiry or not yet known) */
  readonly expiresAt: number | null
  /** the subscriptions that have not ended, by channel (a snapshot), the path channel's included */
  readonly subscriptions: ReadonlyMap<string, Subscription>
  /**
   * Joins a channel on this socket. The subscribe is sent once the socket is ready, and again
   * (with `since`) after every reconnect. A channel that already has a live subscription
   * returns that one.
   */
  subscribe (channel: string, options?: SubscribeOptions): Subscription
  /**
   * Publishes on the path channel; resolves with the message id from the `ack`. While not open the
   * frame waits and is sent once the socket is ready. Rejects with a PublishError on an `error`
   * frame for it, when the socket drops after sending but before the ack (the message may or may
   * not have been published), and on close(). Without a path channel, publish on a subscription.
   */
  publish (data: unknown): Promise<string | null>
  on<K extends keyof Events>(event: K, fn: Listener<K>): () => void
  /** drops the current socket and reconnects now (with `since`) */
  reconnect (): void
  /** closes for good: state 'closed', no reconnect, every subscription ends */
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
// refusals of a resubscribe that a later try may not get
const TRANSIENT = new Set<string>(['unavailable', 'rate_limited', 'internal'])

interface SubRecord {
  readonly channel: string
  readonly by: 'client' | 'server'
  state: SubscriptionState
  lastId: string | undefined
  recovered: boolean | undefined
  /** the latest 'subscribed' event, for whenSubscribed() */
  last: SubscribedEvent | undefined
  /** the server subscribed the socket itself while our subscribe was in flight */
  serverGranted: boolean
  /** answered at least once: a later refusal on a resubscribe may be retried */
  everSubscribed: boolean
  /** the ref of the subscribe or unsubscribe in flight */
  ref: number | undefined
  /** unsubscribe() was called: nothing more is delivered, the answer ends it */
  leaving: Promise<void> | null
  leave: () => void
  retries: number
  retryTimer: ReturnType<typeof setTimeout> | undefined
  endCode: ErrorCode | 'unsubscribed' | 'closed'
  readonly seen: Set<string>
  readonly waiters: Array<{ resolve: (e: SubscribedEvent) => void, reject: (err: Error) => void }>
  readonly listeners: { [K in keyof SubscriptionEvents]: Set<SubscriptionListener<K>> }
  readonly api: Subscription
}

interface Pending {
  data: unknown
  ref: number
  sent: boolean
  sub: SubRecord
  resolve: (id: string | null) => void
  reject: (err: Error) => void
}

interface Endpoint { root: string, query: string, channel: string | undefined }

/**
 * Splits the configured URL into the server's root, a query to keep, and the channel of a
 * `/ws/<channel>` path, so the socket can open on `/ws/<channel>` or on `/ws` as needed.
 */
function endpointOf (url: string, channel: string | undefined): Endpoint {
  const wsUrl = url.replace(/^http(s?):/i, 'ws$1:')
  const q = wsUrl.indexOf('?')
  const query = q === -1 ? '' : wsUrl.slice(q + 1)
  const full = q === -1 ? wsUrl : wsUrl.slice(0, q)
  // only the path may name the endpoint: a host called `ws` is a host
  const split = /^([a-z][a-z0-9+.-]*:\/\/[^/]*)(.*)$/i.exec(full)
  const authority = split === null ? '' : split[1]
  let path = split === null ? full : split[2]
  const m = /\/ws(?:\/([^/]+))?\/*$/.exec(path)
  if (m !== null) {
    path = path.slice(0, m.index)
    if (m[1] !== undefined) {
      try {
        channel = decodeURIComponent(m[1])
      } catch {
        channel = m[1]
      }
    }
  } else {
    path = path.replace(/\/+$/, '')
  }
  return { root: authority + path, query, channel }
}

function socketUrl (ep: Endpoint, channel: string | null, since: string | undefined): string {
  const params = [ep.query, since !== undefined && channel !== null ? `since=${encodeURIComponent(since)}` : ''].filter(p => p !== '')
  const path = channel === null ? '/ws' : `/ws/${encodeURIComponent(channel)}`
  return `${ep.root}${path}${params.length > 0 ? `?${params.join('&')}` : ''}`
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
  const endpoint = endpointOf(options.url, options.channel)

  const listeners: { [K in keyof Events]: Set<Listener<K>> } = {
    message: new Set(), direct: new Set(), presence: new Set(), state: new Set(), error: new Set(), refreshed: new Set(), subscription: new Set()
  }
  let state: ClientState = 'connecting'
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
  /** live subscriptions by channel; an ended one is removed */
  const subs = new Map<string, SubRecord>()
  /** unsubscribe() called, answer awaited (a new subscribe to the channel may have replaced it in `subs`) */
  const unsubscribing = new Set<SubRecord>()
  /** subscribe and unsubscribe frames awaiting their answer on the current socket */
  const requests = new Map<string | number, { kind: 'subscribe' | 'unsubscribe', sub: SubRecord }>()
  // the path channel's subscription: kept after it ends, for `lastId`
  const pathSub: SubRecord | null = endpoint.channel === undefined ? null : createSub(endpoint.channel, 'client', options.since)
  if (pathSub !== null) subs.set(pathSub.channel, pathSub)
  /** whether the socket being opened (or open) carries the path channel in its URL */
  let socketHasPath = false

  function emit<K extends keyof Events> (event: K, payload: Events[K]): void {
    for (const fn of [...listeners[event]]) call(fn, payload)
  }

  function emitSub<K extends keyof SubscriptionEvents> (sub: SubRecord, event: K, payload: SubscriptionEvents[K]): void {
    for (const fn of [...sub.listeners[event]]) call(fn, payload)
  }

  function call<T> (fn: (payload: T) => void, payload: T): void {
    try {
      fn(payload)
    } catch (err) {
      // a listener's bug must not break the connection; surface it asynchronously
      setTimeout(() => { throw err }, 0)
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

  function sendPublish (p: Pending): boolean {
    // a publish waits for its subscription: the server refuses one for a channel the socket lacks
    if (p.sub.state !== 'subscribed') return false
    // the path channel is the default, and a frame without `channel` suits servers of the one-channel protocol too
    if (p.sub === pathSub && socketHasPath) return send({ type: 'publish', data: p.data, ref: p.ref })
    return send({ type: 'publish', channel: p.sub.channel, data: p.data, ref: p.ref })
  }

  function flush (): void {
    for (const p of pending) {
      if (!p.sent) p.sent = sendPublish(p)
    }
  }

  function settle (ref: unknown, fn: (p: Pending) => void): boolean {
    const i = pending.findIndex(p => p.ref === ref)
    if (i === -1) return false
    const [p] = pending.splice(i, 1)
    fn(p)
    return true
  }

  function enqueue (sub: SubRecord, data: unknown): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const p: Pending = { data, ref: nextRef++, sent: false, sub, resolve, reject }
      pending.push(p)
      p.sent = sendPublish(p)
    })
  }

  // --- subscriptions -------------------------------------------------------------------

  function createSub (channel: string, by: 'client' | 'server', since: string | undefined): SubRecord {
    const sub: SubRecord = {
      channel,
      by,
      state: 'subscribing',
      lastId: since,
      recovered: undefined,
      last: undefined,
      serverGranted: false,
      everSubscribed: false,
      ref: undefined,
      leaving: null,
      leave: () => {},
      retries: 0,
      retryTimer: undefined,
      endCode: 'unsubscribed',
      seen: new Set(),
      waiters: [],
      listeners: { message: new Set(), presence: new Set(), subscribed: new Set(), unsubscribed: new Set(), error: new Set() },
      api: {
        channel,
        by,
        get state () { return sub.state },
        get lastId () { return sub.lastId },
        get recovered () { return sub.recovered },
        on (event, fn) {
          const set = sub.listeners[event] as Set<typeof fn>
          set.add(fn)
          return () => { set.delete(fn) }
        },
        publish (data: unknown): Promise<string | null> {
          if (state === 'closed') return Promise.reject(new PublishError('closed', 'client closed'))
          if (sub.state === 'unsubscribed' || sub.leaving !== null) {
            return Promise.reject(new PublishError('unsubscribed', `not subscribed to ${channel}`))
          }
          return enqueue(sub, data)
        },
        unsubscribe: () => unsubscribe(sub),
        whenSubscribed (): Promise<SubscribedEvent> {
          if (sub.state === 'subscribed') return Promise.resolve(sub.last ?? subscribedEvent(sub.by, sub.recovered))
          if (sub.state === 'unsubscribed') return Promise.reject(new SubscriptionError(sub.endCode, channel, `${channel}: ${sub.endCode}`))
          return new Promise((resolve, reject) => { sub.waiters.push({ resolve, reject }) })
        }
      }
    }
    return sub
  }

  const subscribedEvent = (by: 'client' | 'server', recovered: boolean | undefined): SubscribedEvent =>
    recovered === undefined ? { by } : { by, recovered }

  function request (sub: SubRecord, kind: 'subscribe' | 'unsubscribe'): void {
    if (sub.ref !== undefined) requests.delete(sub.ref)
    const ref = nextRef++
    sub.ref = ref
    requests.set(ref, { kind, sub })
    const sent = kind === 'subscribe'
      ? send({ type: 'subscribe', channel: sub.channel, ...(sub.lastId !== undefined ? { since: sub.lastId } : {}), ref })
      : send({ type: 'unsubscribe', channel: sub.channel, ref })
    // not sent: the socket is not ready, and its `ready` sends it
    if (!sent) {
      requests.delete(ref)
      sub.ref = undefined
    }
  }

  function markSubscribed (sub: SubRecord, by: 'client' | 'server', recovered: boolean | undefined): void {
    if (sub.state === 'unsubscribed') return
    clearTimeout(sub.retryTimer)
    sub.retryTimer = undefined
    sub.retries = 0
    sub.serverGranted = false
    sub.state = 'subscribed'
    sub.everSubscribed = true
    sub.recovered = recovered
    const event = subscribedEvent(by, recovered)
    sub.last = event
    for (const w of sub.waiters.splice(0)) w.resolve(event)
    emitSub(sub, 'subscribed', event)
    flush()
  }

  function end (sub: SubRecord, reason: UnsubscribeReason, error?: ErrorFrame): void {
    if (sub.state === 'unsubscribed') return
    clearTimeout(sub.retryTimer)
    sub.retryTimer = undefined
    if (sub.ref !== undefined) requests.delete(sub.ref)
    sub.ref = undefined
    sub.state = 'unsubscribed'
    sub.endCode = error?.code ?? (reason === 'closed' ? 'closed' : 'unsubscribed')
    if (subs.get(sub.channel) === sub) subs.delete(sub.channel)
    unsubscribing.delete(sub)
    for (const p of pending.filter(p => p.sub === sub && !p.sent)) {
      settle(p.ref, p => p.reject(new PublishError(reason === 'closed' ? 'closed' : 'unsubscribed', `not subscribed to ${sub.channel}`)))
    }
    for (const w of sub.waiters.splice(0)) w.reject(new SubscriptionError(sub.endCode, sub.channel, error?.message ?? `${sub.channel}: ${reason}`))
    sub.leave()
    emitSub(sub, 'unsubscribed', error === undefined ? { reason } : { reason, error })
  }

  function subscribe (channel: string, opts: SubscribeOptions = {}): Subscription {
    if (typeof channel !== 'string' || channel === '') throw new TypeError('subscribe() needs a channel name')
    const live = subs.get(channel)
    if (live !== undefined && live.leaving === null) return live.api
    const sub = createSub(channel, 'client', opts.since)
    if (state === 'closed') {
      sub.state = 'unsubscribed'
      sub.endCode = 'closed'
      return sub.api
    }
    // a leaving one is replaced: the server sees the unsubscribe, then this subscribe
    subs.set(channel, sub)
    request(sub, 'subscribe')
    return sub.api
  }

  function unsubscribe (sub: SubRecord): Promise<void> {
    if (sub.state === 'unsubscribed') return Promise.resolve()
    if (sub.leaving !== null) return sub.leaving
    sub.leaving = new Promise(resolve => { sub.leave = resolve })
    unsubscribing.add(sub)
    if (ready === null) {
      // nothing to tell a server that has not got it; a pending path channel is left once `ready` comes
      end(sub, 'client')
    } else {
      clearTimeout(sub.retryTimer)
      sub.retryTimer = undefined
      request(sub, 'unsubscribe')
    }
    return sub.leaving
  }

  /** A refused (re)subscribe or unsubscribe. */
  function onRefused (sub: SubRecord, kind: 'subscribe' | 'unsubscribe', frame: ErrorFrame): void {
    // the server added the channel itself meanwhile (e.g. from its connect callback): the socket has it
    if (kind === 'subscribe' && sub.serverGranted) {
      markSubscribed(sub, 'server', undefined)
      return
    }
    emitSub(sub, 'error', frame)
    // Only a subscription that was already answered is retried: a refused first subscribe is
    // its caller's to handle, while a reconnect must not silently lose a channel to a passing
    // overload. An unsubscribe is retried the same way, since the server still has the channel.
    if (TRANSIENT.has(frame.code) && (kind === 'unsubscribe' || sub.everSubscribed)) {
      sub.retries++
      clearTimeout(sub.retryTimer)
      sub.retryTimer = setTimeout(() => {
        sub.retryTimer = undefined
        if (sub.state !== 'unsubscribed' && ready !== null) request(sub, kind)
      }, retryDelay(sub.retries))
      return
    }
    end(sub, kind === 'subscribe' ? 'refused' : 'client', kind === 'subscribe' ? frame : undefined)
  }

  /**
   * After `ready`: the path channel is subscribed by the upgrade itself; every other
   * subscription is sent again with `since` = its last delivered id. That includes the ones the
   * server made: they would be lost with the old socket otherwise, and a server that adds them
   * again itself only gets a second `subscribed` answer, never a doubled delivery. One the
   * client may not join itself (a server-only grant) is refused and ends with 'refused'.
   */
  function resubscribe (frame: ReadyFrame): void {
    const hadPath = socketHasPath
    // left while this socket was connecting: leave it on the server too, unless a new
    // subscription to the same channel wants it (its subscribe is answered `subscribed` again)
    if (hadPath && pathSub !== null && pathSub.state === 'unsubscribed' && !subs.has(pathSub.channel)) {
      const ref = nextRef++
      requests.set(ref, { kind: 'unsubscribe', sub: pathSub })
      send({ type: 'unsubscribe', channel: pathSub.channel, ref })
    }
    for (const sub of [...subs.values()]) {
      if (sub === pathSub && hadPath) markSubscribed(sub, 'client', frame.recovered)
      else if (sub.state !== 'unsubscribed') request(sub, 'subscribe')
    }
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
    // the path channel rides in the URL (with `since`) as long as it is subscribed; once left, /ws
    socketHasPath = pathSub !== null && pathSub.state !== 'unsubscribed'
    const url = socketUrl(endpoint, socketHasPath && pathSub !== null ? pathSub.channel : null, pathSub?.lastId)
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

  // Half the cap at least: a refusal for the rate limit needs time for the budget to refill,
  // and an early retry would only spend it again (and sustained refusals close the socket).
  function retryDelay (n: number): number {
    const cap = Math.min(backoff.max, backoff.initial * Math.pow(backoff.factor, n - 1))
    return Math.round(cap / 2 + Math.random() * cap / 2)
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
    // answers to this socket's requests will not come; the next `ready` asks again
    const leaving = [...unsubscribing]
    requests.clear()
    // the channel went with the socket, which is all an unsubscribe asked for
    for (const sub of leaving) end(sub, 'client')
    for (const sub of [...subs.values()]) {
      clearTimeout(sub.retryTimer)
      sub.retryTimer = undefined
      sub.ref = undefined
      sub.serverGranted = false
      sub.state = 'subscribing'
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
    const leaving = [...unsubscribing]
    requests.clear()
    removeWindowListeners()
    if (state !== 'closed') setState('closed', code !== undefined ? { code, reason } : {})
    for (const sub of [...leaving, ...subs.values()]) end(sub, 'closed')
  }

  // --- frames -----------------------------------------------------------------------

  /** The subscription a frame of `channel` is for; none once unsubscribe() was called. */
  function deliveringTo (channel: string): SubRecord | null | 'dropped' {
    const sub = subs.get(channel)
    if (sub === undefined) return null
    return sub.leaving !== null ? 'dropped' : sub
  }

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
      case 'message': {
        const sub = deliveringTo(frame.channel)
        if (sub === 'dropped') break
        if (sub !== null) {
          // a resubscribe may replay what the old socket already delivered
          if (sub.seen.has(frame.id)) break
          sub.seen.add(frame.id)
          if (sub.seen.size > SEEN_IDS) sub.seen.delete(sub.seen.values().next().value as string)
          sub.lastId = frame.id
          emitSub(sub, 'message', frame)
        }
        emit('message', frame)
        break
      }
      case 'direct':
        emit('direct', frame)
        break
      case 'presence': {
        const sub = deliveringTo(frame.channel)
        if (sub === 'dropped') break
        if (sub !== null) emitSub(sub, 'presence', frame)
        emit('presence', frame)
        break
      }
      case 'ack':
        settle(frame.ref, p => p.resolve(frame.id ?? null))
        break
      case 'refreshed':
        refreshing = false
        expiresAt = frame.expiresAt
        scheduleRefresh()
        emit('refreshed', { expiresAt: frame.expiresAt })
        break
      case 'subscribed':
        onSubscribed(frame)
        break
      case 'unsubscribed':
        onUnsubscribed(frame)
        break
      case 'error':
        onError(frame)
        break
      case 'pong':
        break
    }
  }

  // refs are echoed as sent; ours are numbers, so a string one is not ours
  const requestOf = (ref: string | number): { kind: 'subscribe' | 'unsubscribe', sub: SubRecord } | undefined =>
    typeof ref === 'number' ? requests.get(ref) : undefined

  function onSubscribed (frame: SubscribedFrame): void {
    if (frame.ref !== undefined) {
      const req = requestOf(frame.ref)
      // an answer to a request of an older socket, or to one superseded since
      if (req === undefined || req.kind !== 'subscribe') return
      requests.delete(frame.ref)
      req.sub.ref = undefined
      markSubscribed(req.sub, frame.by, frame.recovered)
      return
    }
    const live = subs.get(frame.channel)
    if (live !== undefined) {
      if (live.leaving !== null || live.state !== 'subscribing') return
      // our own subscribe in flight answers for itself (with `recovered`), unless it is refused
      if (live.ref !== undefined) live.serverGranted = true
      else markSubscribed(live, 'server', frame.recovered)
      return
    }
    const sub = createSub(frame.channel, 'server', undefined)
    subs.set(sub.channel, sub)
    sub.state = 'subscribed'
    sub.everSubscribed = true
    sub.recovered = frame.recovered
    sub.last = subscribedEvent('server', frame.recovered)
    emit('subscription', sub.api)
    emitSub(sub, 'subscribed', sub.last)
  }

  function onUnsubscribed (frame: UnsubscribedFrame): void {
    if (frame.ref !== undefined) {
      const req = requestOf(frame.ref)
      if (req === undefined) return
      requests.delete(frame.ref)
      req.sub.ref = undefined
      end(req.sub, frame.reason)
      return
    }
    const sub = subs.get(frame.channel)
    if (sub !== undefined) end(sub, frame.reason)
  }

  function onError (frame: ErrorFrame): void {
    if (frame.ref !== undefined) {
      if (settle(frame.ref, p => p.reject(new PublishError(frame.code, frame.message)))) return
      const req = requestOf(frame.ref)
      if (req !== undefined) {
        requests.delete(frame.ref)
        req.sub.ref = undefined
        onRefused(req.sub, req.kind, frame)
        return
      }
    }
    if (frame.ref === undefined && frame.channel !== undefined) {
      const sub = subs.get(frame.channel)
      if (sub !== undefined) {
        emitSub(sub, 'error', frame)
        return
      }
    }
    if (frame.ref === undefined && refreshing) {
      // the refresh was refused; try again shortly, before the grace runs out
      refreshing = false
      clearTimeout(refreshTimer)
      refreshTimer = setTimeout(refresh, 5000)
    }
    emit('error', frame)
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
    // before 'open', so its listeners see every subscription in its new state
    resubscribe(frame)
    // a listener may have closed the client or dropped the socket
    if (ready !== frame) return
    setState('open', { ready: frame, ...(frame.recovered !== undefined ? { recovered: frame.recovered } : {}) })
    if (ready !== frame) return
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
    get lastId () { return pathSub?.lastId },
    get channel () { return endpoint.channel },
    get ready () { return ready },
    get expiresAt () { return expiresAt },
    get subscriptions () { return new Map([...subs].map(([channel, sub]) => [channel, sub.api])) },
    subscribe,
    publish (data: unknown): Promise<string | null> {
      if (state === 'closed') return Promise.reject(new PublishError('closed', 'client closed'))
      if (pathSub === null) {
        return Promise.reject(new PublishError('bad_request', 'no path channel: publish through a subscription (client.subscribe(channel).publish(data))'))
      }
      if (pathSub.state === 'unsubscribed' || pathSub.leaving !== null) {
        return Promise.reject(new PublishError('unsubscribed', `not subscribed to ${pathSub.channel}`))
      }
      return enqueue(pathSub, data)
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
