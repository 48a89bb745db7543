// One object per socket that owns its state: its subscriptions, what it waits
// to send, its message budget, its token's expiry, and the frames it receives
// (publish, subscribe, unsubscribe, ping, refresh). It reaches the rest of the
// node through SessionHost.
import type { Logger } from '../config/logger.ts'
import type { Identity } from '../auth/claims.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { CloseCodes, ERROR_CODES, type ErrorCode } from '../protocol/codes.ts'
import { parseClientFrame, type PublishFrame, type RefreshFrame } from '../protocol/frames.ts'
import { frameText } from '../protocol/wire.ts'
import { MessageBudget } from './message-budget.ts'
import type { Stats } from './stats.ts'
import type { PublishOrder } from './publisher.ts'
import type { Subscription, SubscriptionOwner } from './subscription.ts'
import type { Transport, TransportHandler } from './transport.ts'

export type Ref = string | number
export type UnsubscribeReason = 'client' | 'server' | 'forbidden'

/** What a session needs of its node. */
export interface SessionHost {
  readonly log: Logger
  readonly stats: Stats
  /** publishes and subscribes per second per socket; bursts to twice that */
  readonly messageRate: number
  /** bytes queued to one socket before it is closed as a slow consumer */
  readonly sendBuffer: number
  /** resolves to the message id, or null when the backend dropped the message */
  publish (session: Session, sub: Subscription, data: unknown): Promise<string | null>
  verify (token: string): Promise<Identity>
  /** whether the token (user id and `channels` claim) still allows the channel */
  mayJoin (sub: Subscription, identity: Identity): boolean
  /** subscribes, answers `subscribed` (and the replay) or an `error`; never rejects */
  subscribe (session: Session, channel: string, o: { since?: string, ref?: Ref, by: 'client' | 'server' }): Promise<void>
  /** leaves the channel (if it has it) and answers `unsubscribed`; never rejects */
  unsubscribe (session: Session, channel: string, reason: UnsubscribeReason, ref?: Ref): Promise<void>
  /** the session stopped taking traffic (closing): out of every registry */
  drop (session: Session): void
  /** the socket is gone */
  closed (session: Session, code: number): void
}

export interface SessionInit {
  id: string
  userId: string
  /** the channel of `/ws/:channel`; null on `/ws` and `/` */
  pathChannel: string | null
  remoteAddress: string
  /** from the token; a `refresh` replaces it */
  identity: Identity
}

const FRAME_ERROR_CODES = new Set<string>(ERROR_CODES)
// A slow consumer is judged by what it fails to drain over time, not by one
// burst the kernel has not had a chance to take: closed when its backlog stays
// over the limit this long, or at once past HARD_FACTOR times the limit, which
// bounds the memory one socket can hold.
const SLOW_CONSUMER_MS = 1000
const HARD_FACTOR = 4
// after this many invalid frames in a row a client is not confused, it is abusive
const MAX_BAD_FRAMES = 50

export class Session implements TransportHandler, SubscriptionOwner, PublishOrder {
  readonly id: string
  readonly userId: string
  readonly pathChannel: string | null
  readonly remoteAddress: string
  readonly openedAt = Date.now()
  readonly transport: Transport
  #identity: Identity
  // answered since the last ping
  #alive = true
  #closing = false
  #gone = false
  #framesIn = 0
  #framesOut = 0
  // performance.now() since when the backlog has been over the limit; 0: it is not
  #overSince = 0
  // until `ready` is out every frame waits here, so `ready` stays first
  #pending: Buffer[] | null = []
  // an array, not a map: a socket has few, and each entry costs less (searched by name on
  // each subscribe, unsubscribe and publish, at most WS_CHANNELS_PER_SOCKET of them)
  readonly #subs: Subscription[] = []
  // subscription changes run one after another, in the order they were asked
  // for: answers come in order, and none sees another half done
  #ops: Promise<void> | null = null
  readonly #host: SessionHost
  readonly #budget: MessageBudget
  #badFrames = 0
  /** the last of its publishes still waiting for a verdict (hooks, the backend), kept by the Publisher */
  judging: Promise<unknown> | null = null

  constructor (host: SessionHost, transport: Transport, init: SessionInit) {
    this.#host = host
    this.transport = transport
    this.id = init.id
    this.userId = init.userId
    this.pathChannel = init.pathChannel
    this.remoteAddress = init.remoteAddress
    this.#identity = lean(init.identity)
    this.#budget = new MessageBudget(host.messageRate)
    transport.bind(this)
  }

  /** what the current token says */
  get identity (): Identity { return this.#identity }
  /** the token's id, for revocation */
  get jti (): string | undefined { return this.#identity.jti }
  /** the token's `exp`, seconds; undefined for tokens without one */
  get expiresAt (): number | undefined { return this.#identity.exp }
  /** no traffic to or from it any more */
  get closing (): boolean { return this.#closing }
  /** its close event came: presence is being taken out */
  get gone (): boolean { return this.#gone }
  get framesIn (): number { return this.#framesIn }
  get framesOut (): number { return this.#framesOut }
  get subscriptions (): readonly Subscription[] { return this.#subs }
  /** the channels it is subscribed to, in the order it subscribed */
  get channels (): string[] { return this.#subs.map(sub => sub.channel) }

  subscription (channel: string): Subscription | undefined {
    const subs = this.#subs
    for (let i = 0; i < subs.length; i++) if (subs[i].channel === channel) return subs[i]
    return undefined
  }

  /** The liveness round: a socket that did not answer the last ping is dropped without a close frame. */
  heartbeat (): void {
    if (!this.#alive) {
      this.#closing = true
      this.transport.terminate()
      return
    }
    this.#alive = false
    this.transport.ping()
  }

  // --- subscriptions -------------------------------------------------------------

  add (sub: Subscription): void {
    this.#subs.push(sub)
  }

  remove (sub: Subscription): void {
    const i = this.#subs.indexOf(sub)
    if (i !== -1) this.#subs.splice(i, 1)
  }

  /** The server API subscribes this socket (no client-side checks; the channel limit holds). */
  serverSubscribe (channel: string): void {
    this.queue(() => this.#host.subscribe(this, channel, { by: 'server' })).catch((err: unknown) => this.failed(err, undefined, channel))
  }

  serverUnsubscribe (channel: string): void {
    this.queue(() => this.#host.unsubscribe(this, channel, 'server')).catch((err: unknown) => this.failed(err, undefined, channel))
  }

  /** Runs a subscription change after the ones asked for before it; its failure is the caller's. */
  queue (op: () => Promise<void>): Promise<void> {
    const run = this.#ops === null ? op() : this.#ops.then(op)
    // the chain goes on whatever this one did; an idle socket holds no settled chain
    const settle = (): void => { if (this.#ops === tail) this.#ops = null }
    const tail: Promise<void> = run.then(settle, settle)
    this.#ops = tail
    return run
  }

  // --- sending -----------------------------------------------------------------

  /** A frame for this socket (of a subscription, or its own); held back until `ready` is out. */
  deliver (framed: Buffer): void {
    if (this.#pending !== null) this.#pending.push(framed)
    else this.#write(framed)
  }

  /** One frame to this socket alone (ack, error, pong…). */
  send (payload: string): void {
    this.deliver(frameText(payload))
  }

  /** Goes live: `ready`, then what waited. */
  open (ready: string): void {
    const pending = this.#pending
    this.#pending = null
    this.#write(frameText(ready))
    if (pending !== null) for (const framed of pending) this.#write(framed)
  }

  #write (framed: Buffer): void {
    if (this.#closing) return
    const host = this.#host
    const buffered = this.transport.write(framed)
    this.#framesOut++
    host.stats.framesOut++
    if (buffered > host.sendBuffer) this.#judge(host.sendBuffer)
    else this.#overSince = 0
  }

  #judge (limit: number): void {
    // what waits for this turn's flush is no backlog yet: the transport offers it to the kernel first
    const backlog = this.transport.backlog()
    if (backlog <= limit) {
      this.#overSince = 0
      return
    }
    const now = performance.now()
    if (this.#overSince === 0) this.#overSince = now
    if (backlog > limit * HARD_FACTOR || now - this.#overSince >= SLOW_CONSUMER_MS) this.close(CloseCodes.slowConsumer, 'slow consumer')
  }

  /** Stops all traffic to the socket at once and starts the close handshake. */
  close (code: number, reason: string): void {
    if (this.#closing) return
    this.#closing = true
    this.#host.drop(this)
    this.transport.close(code, reason)
  }

  // --- socket events -------------------------------------------------------------

  onMessage (data: Buffer, isBinary: boolean): void {
    if (this.#closing) return
    this.#alive = true
    this.#framesIn++
    this.#host.stats.framesIn++
    this.#frame(data, isBinary)
  }

  onPong (): void {
    this.#alive = true
  }

  onClose (code: number): void {
    this.#closing = true
    this.#gone = true
    this.#host.drop(this)
    this.#host.closed(this, code)
  }

  /** ws reports protocol errors (1009, 1007, 1002) after it has sent the close frame itself. */
  onError (err: Error): void {
    this.#host.log.debug({ err, connectionId: this.id }, 'websocket error')
  }

  // --- client frames ---------------------------------------------------------------

  #frame (data: Buffer, isBinary: boolean): void {
    const parsed = isBinary ? { ok: false as const, message: 'binary frames are not supported' } : parseClientFrame(data.toString())
    if (!parsed.ok) {
      if (++this.#badFrames >= MAX_BAD_FRAMES) this.close(CloseCodes.policy, 'too many invalid frames')
      else this.error('bad_request', parsed.message, 'ref' in parsed ? parsed.ref : undefined)
      return
    }
    this.#badFrames = 0
    const frame = parsed.frame
    switch (frame.type) {
      case 'ping':
        this.send('{"type":"pong"}')
        break
      case 'publish':
        if (!this.#allowed(frame.ref, frame.channel)) return
        try {
          this.#publish(frame)
        } catch (err) {
          this.failed(err, frame.ref, frame.channel)
        }
        break
      case 'subscribe': {
        if (!this.#allowed(frame.ref, frame.channel)) return
        const { channel, since, ref } = frame
        this.queue(() => this.#host.subscribe(this, channel, { since, ref, by: 'client' })).catch((err: unknown) => this.failed(err, ref, channel))
        break
      }
      case 'unsubscribe': {
        if (!this.#allowed(frame.ref, frame.channel)) return
        const { channel, ref } = frame
        this.queue(() => this.#host.unsubscribe(this, channel, 'client', ref)).catch((err: unknown) => this.failed(err, ref, channel))
        break
      }
      case 'refresh':
        // a verification each: budgeted like the rest
        if (!this.#allowed(undefined, undefined)) return
        this.#refresh(frame).catch((err: unknown) => this.failed(err))
        break
    }
  }

  /** Spends one frame of the budget; past it the client is told, and past a second's worth the socket closes 4429. */
  #allowed (ref: Ref | undefined, channel: string | undefined): boolean {
    const verdict = this.#budget.take()
    if (verdict === 'allowed') return true
    if (verdict === 'exceeded') this.close(CloseCodes.rateLimited, 'message rate exceeded')
    else this.error('rate_limited', 'too many messages', ref, channel)
    return false
  }

  /** Throws synchronously for what is refused before the engine; the engine's answer comes later. */
  #publish (frame: PublishFrame): void {
    const channel = frame.channel ?? this.pathChannel
    if (channel === null) throw GatecastError.badRequest('publish needs a channel on a socket without a path channel')
    const sub = this.subscription(channel)
    if (sub === undefined) throw GatecastError.forbidden('not subscribed to this channel')
    if (!sub.opts.publish) throw GatecastError.forbidden('clients may not publish on this channel')
    const ref = frame.ref
    this.#host.publish(this, sub, frame.data).then((id) => {
      // nothing may escape as an unhandled rejection: that would end the process
      try {
        this.#host.stats.publishedByClient++
        // a message the backend dropped (it handled it) is acknowledged without an id
        if (ref !== undefined) this.send(`{"type":"ack","ref":${JSON.stringify(ref)}${id === null ? '' : `,"id":"${id}"`}}`)
      } catch (err) {
        this.failed(err, ref, frame.channel)
      }
    }, (err: unknown) => this.failed(err, ref, frame.channel))
  }

  async #refresh (frame: RefreshFrame): Promise<void> {
    const identity = await this.#host.verify(frame.token)
    if (identity.userId !== this.userId) throw GatecastError.forbidden('token belongs to another user')
    // in force at once (expiry, revocation, the checks of subscribes still to start), even
    // while a subscription change ahead of the withdrawals below is in flight
    this.#identity = lean(identity)
    await this.queue(async () => {
      // what the server subscribed was never the client's to ask for: the new token does not judge it
      for (const sub of [...this.#subs]) {
        if (sub.by === 'client' && !this.#host.mayJoin(sub, identity)) await this.#host.unsubscribe(this, sub.channel, 'forbidden')
      }
      this.send(JSON.stringify({ type: 'refreshed', expiresAt: identity.exp ?? null }))
    })
  }

  error (code: ErrorCode, message: string, ref?: Ref, channel?: string): void {
    // undefined fields are left out
    this.send(JSON.stringify({ type: 'error', ref, channel, code, message }))
  }

  /** Answers a failed request with an `error` frame; what is not a GatecastError is logged and reported as `internal`. */
  failed (err: unknown, ref?: Ref, channel?: string): void {
    if (isGatecastError(err)) {
      const code = FRAME_ERROR_CODES.has(err.code)
        ? err.code as ErrorCode
        : err.statusCode === 400 ? 'bad_request' : err.statusCode === 503 ? 'unavailable' : err.statusCode < 500 ? 'forbidden' : 'internal'
      this.error(code, err.message, ref, channel)
      return
    }
    this.#host.log.error({ err, connectionId: this.id }, 'frame handling failed')
    this.error('internal', 'internal error', ref, channel)
  }
}

// an open socket needs the token's few fields, not every claim it carried (memory per socket)
function lean (identity: Identity): Identity {
  if (identity.claims === undefined) return identity
  const { claims: _claims, ...rest } = identity
  return rest
}
