// The sessions of this node: which subscriptions are on which channel, fan-out
// of engine deliveries, calls on single connections, liveness pings, token
// expiry and the shutdown drain. deliver() is the per-message path: one Buffer
// per publish, then a plain loop of offers — no per-socket JSON, lookups,
// closures or promises.
import type { Logger } from '../config/logger.ts'
import type { Broker } from '../engine/broker.ts'
import type { ConnectionCall, ConnectionInfo, ControlMessage, EngineListener } from '../engine/types.ts'
import { CloseCodes } from '../protocol/codes.ts'
import { frameText } from '../protocol/wire.ts'
import type { Session } from './session.ts'
import type { Stats } from './stats.ts'
import type { Subscription } from './subscription.ts'

export interface HubOptions {
  broker: Broker
  stats: Stats
  log: Logger
  /** seconds between pings; a socket silent for one interval is terminated */
  pingInterval: number
  /** seconds after `exp` before a socket without `refresh` is closed 4401 */
  expiryGrace: number
  onPresenceLost: (channel: string, userId: string) => void
  /** how long and how many revocations are remembered for sessions not yet adopted (tests shorten them) */
  rememberRevoked?: { ms: number, max: number }
}

// A logout that lands after an upgrade's token was verified but before its
// session is adopted finds no session to close, and the auth store was read
// already: the hub remembers the revocation for as long as an admission may
// still be in flight, longer than verification (a JWKS fetch is bounded by
// JWT_JWKS_TIMEOUT), the engine calls and any sane onConnect hook take.
// Remembering longer costs only memory, so the bound is generous.
const REVOKED_MEMORY_MS = 5 * 60_000
// ~100 bytes an entry with a UUID jti: about 1 MB under a storm of logouts, which
// evicts the oldest first, the ones least likely to have an admission left
const REVOKED_MEMORY_MAX = 10_000

export class Hub implements EngineListener {
  readonly #byChannel = new Map<string, Set<Subscription>>()
  readonly #byUser = new Map<string, Set<Session>>()
  readonly #byId = new Map<string, Session>()
  readonly #all = new Set<Session>()
  // every joiner awaits the channel's one subscription, also while it is in flight
  readonly #subscriptions = new Map<string, Promise<void>>()
  readonly #o: HubOptions
  readonly #timers: NodeJS.Timeout[] = []
  // during shutdown: the sessions whose close has not come yet
  #draining: { left: Set<Session>, done: () => void } | null = null
  // jti → performance.now() until which it is remembered; insertion order is expiry order
  readonly #revoked = new Map<string, number>()
  readonly #revokedMs: number
  readonly #revokedMax: number

  constructor (o: HubOptions) {
    this.#o = o
    this.#revokedMs = o.rememberRevoked?.ms ?? REVOKED_MEMORY_MS
    this.#revokedMax = o.rememberRevoked?.max ?? REVOKED_MEMORY_MAX
    this.#timers.push(setInterval(() => this.#pingAll(), o.pingInterval * 1000).unref())
    this.#timers.push(setInterval(() => this.#expire(), 1000).unref())
  }

  get size (): number {
    return this.#all.size
  }

  /** subscriptions of this node's sockets per namespace */
  subscriptionsByNamespace (): Map<string, number> {
    const out = new Map<string, number>()
    for (const set of this.#byChannel.values()) {
      const first = set.values().next().value
      if (first === undefined) continue
      const ns = first.opts.namespace ?? ''
      out.set(ns, (out.get(ns) ?? 0) + set.size)
    }
    return out
  }

  /** channels with a subscription of this node's sockets */
  get channelCount (): number {
    return this.#byChannel.size
  }

  /** users with a socket on this node */
  get userCount (): number {
    return this.#byUser.size
  }

  /** up to `max` users of this node's sockets, with their socket counts here (the console's sample) */
  userSample (max: number): Array<[userId: string, sockets: number]> {
    const out: Array<[string, number]> = []
    for (const [userId, sessions] of this.#byUser) {
      if (out.length >= max) break
      out.push([userId, sessions.size])
    }
    return out
  }

  /** the user's open sockets on this node */
  userConnections (userId: string): ConnectionInfo[] {
    const out: ConnectionInfo[] = []
    for (const session of this.#byUser.get(userId) ?? []) {
      if (!session.closing) out.push({ connectionId: session.id, userId, channels: session.channels, openedAt: session.openedAt })
    }
    return out
  }

  // --- registry ---------------------------------------------------------------

  /**
   * Takes the session under management (user and id index, pings, expiry). Not yet on any channel.
   * A session whose token was revoked since its admission is closed 4401 at once.
   */
  adopt (session: Session): void {
    this.#all.add(session)
    this.#byId.set(session.id, session)
    let mine = this.#byUser.get(session.userId)
    if (mine === undefined) this.#byUser.set(session.userId, (mine = new Set()))
    mine.add(session)
    // a map lookup, no engine round trip: the handshake is the costliest path
    if (this.#revoked.size > 0 && session.jti !== undefined && this.#isRevoked(session.jti)) {
      session.close(CloseCodes.unauthorized, 'token revoked')
    }
  }

  /** Puts the subscription on its channel; resolves once this node receives the channel's deliveries. */
  async join (sub: Subscription): Promise<void> {
    // closed while its setup awaited the engine: forget() has run, and it must not linger on the channel
    if (sub.owner.closing) return
    const channel = sub.channel
    let set = this.#byChannel.get(channel)
    if (set === undefined) this.#byChannel.set(channel, (set = new Set()))
    set.add(sub)
    let subscribed = this.#subscriptions.get(channel)
    if (subscribed === undefined) {
      subscribed = this.#o.broker.subscribe(channel)
      this.#subscriptions.set(channel, subscribed)
      const mine = subscribed
      // a failed subscription is retried by the next joiner, unless a newer one replaced it
      subscribed.catch(() => { if (this.#subscriptions.get(channel) === mine) this.#subscriptions.delete(channel) })
    }
    await subscribed
  }

  /** Off its channel at once: nothing of the channel reaches the subscription after this. */
  leave (sub: Subscription): void {
    const channel = sub.channel
    const set = this.#byChannel.get(channel)
    // the node's subscription to the channel goes with its last local one
    if (set !== undefined && set.delete(sub) && set.size === 0) {
      this.#byChannel.delete(channel)
      this.#subscriptions.delete(channel)
      this.#o.broker.unsubscribe(channel).catch((err: unknown) => this.#o.log.warn({ err, channel }, 'unsubscribe failed'))
    }
  }

  /** Out of every index, with all its subscriptions. */
  forget (session: Session): void {
    if (!this.#all.delete(session)) return
    this.#byId.delete(session.id)
    const mine = this.#byUser.get(session.userId)
    if (mine !== undefined) {
      mine.delete(session)
      if (mine.size === 0) this.#byUser.delete(session.userId)
    }
    for (const sub of session.subscriptions) this.leave(sub)
  }

  /** The socket is gone: the shutdown drain stops waiting for it. */
  gone (session: Session): void {
    const d = this.#draining
    if (d !== null && d.left.delete(session) && d.left.size === 0) d.done()
  }

  // --- engine deliveries ---------------------------------------------------------

  deliver (channel: string, seq: number, frame: string, ts: number): void {
    const set = this.#byChannel.get(channel)
    if (set === undefined) return
    if (ts > 0) this.#o.stats.delivery.observe((Date.now() - ts) / 1000)
    // messages only (presence frames have no sequence): once per message, not per socket
    if (seq > 0) this.#o.stats.channelMessages?.bump(channel)
    this.#o.stats.fanout.observe(set.size)
    const framed = frameText(frame)
    for (const sub of set) sub.offer(seq, framed)
  }

  control (msg: ControlMessage): void {
    switch (msg.kind) {
      case 'all':
        this.#offerAll(this.#all, frameText(msg.frame))
        break
      case 'user': {
        const mine = this.#byUser.get(msg.userId)
        if (mine !== undefined) this.#offerAll(mine, frameText(msg.frame))
        break
      }
      case 'kick':
        for (const session of this.#byUser.get(msg.userId) ?? []) session.close(CloseCodes.forbidden, 'disconnected by the server')
        break
      case 'revoke':
        this.#remember(msg.jti)
        for (const session of this.#byUser.get(msg.userId) ?? []) {
          if (session.jti === msg.jti) session.close(CloseCodes.unauthorized, 'token revoked')
        }
        break
      case 'join':
        for (const session of this.#byUser.get(msg.userId) ?? []) session.serverSubscribe(msg.channel)
        break
      case 'leave':
        for (const session of this.#byUser.get(msg.userId) ?? []) session.serverUnsubscribe(msg.channel)
        break
    }
  }

  connection (connectionId: string, call: ConnectionCall): ConnectionInfo | true | null {
    const session = this.#byId.get(connectionId)
    if (session === undefined || session.closing) return null
    switch (call.op) {
      case 'info':
        return { connectionId, userId: session.userId, channels: session.channels, openedAt: session.openedAt }
      case 'subscribe':
        session.serverSubscribe(call.channel)
        break
      case 'unsubscribe':
        session.serverUnsubscribe(call.channel)
        break
      case 'send':
        session.send(call.frame)
        break
      case 'close':
        session.close(CloseCodes.forbidden, 'disconnected by the server')
        break
    }
    return true
  }

  presenceLost (channel: string, userId: string): void {
    this.#o.onPresenceLost(channel, userId)
  }

  #remember (jti: string): void {
    const now = performance.now()
    // re-inserted, so the map stays in expiry order
    this.#revoked.delete(jti)
    this.#revoked.set(jti, now + this.#revokedMs)
    for (const [old, until] of this.#revoked) {
      if (until > now && this.#revoked.size <= this.#revokedMax) break
      this.#revoked.delete(old)
    }
  }

  // by jti alone, as the auth store revokes it
  #isRevoked (jti: string): boolean {
    const until = this.#revoked.get(jti)
    return until !== undefined && until > performance.now()
  }

  #offerAll (sessions: Iterable<Session>, framed: Buffer): void {
    for (const session of sessions) session.deliver(framed)
  }

  // --- housekeeping -----------------------------------------------------------

  #pingAll (): void {
    for (const session of this.#all) session.heartbeat()
  }

  #expire (): void {
    const limit = Date.now() / 1000 - this.#o.expiryGrace
    for (const session of this.#all) {
      if (session.expiresAt !== undefined && session.expiresAt < limit) session.close(CloseCodes.unauthorized, 'token expired')
    }
  }

  /** Closes every socket with 1001, a batch per event-loop turn, and waits for them to go (bounded). */
  async closeAll (deadlineMs: number): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    const sessions = [...this.#all]
    // each of them still has its close event to come: forget() ran at most at close()
    const left = new Set(sessions)
    const drained = new Promise<void>(resolve => {
      if (left.size === 0) resolve()
      else this.#draining = { left, done: resolve }
    })
    for (let i = 0; i < sessions.length; i += 500) {
      for (const session of sessions.slice(i, i + 500)) session.close(CloseCodes.shuttingDown, 'server shutting down')
      await new Promise(resolve => setImmediate(resolve))
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([drained, new Promise(resolve => { timer = setTimeout(resolve, deadlineMs) })])
    clearTimeout(timer)
    this.#draining = null
    for (const session of sessions) session.transport.terminate()
  }
}
