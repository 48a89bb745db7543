// A session's life on this node: set up on an admitted upgrade (`ready`, the
// path channel), its subscriptions made and ended (checks, presence, the
// channel's deliveries, recovery), served while open (SessionHost), and taken
// out of presence when its socket goes.
import type { Logger } from '../config/logger.ts'
import type { AuthService } from '../auth/service.ts'
import type { Identity } from '../auth/claims.ts'
import type { Engine } from '../engine/types.ts'
import { isValidId } from '../engine/ids.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { presenceFrameText, readyFrameText, subscribedFrameText, unsubscribedFrameText } from '../protocol/frames.ts'
import type { Admission } from './admission.ts'
import { isValidChannel, userMayJoin, type ChannelRules } from './channels.ts'
import type { Hooks } from './hooks.ts'
import type { Hub } from './hub.ts'
import type { Publisher } from './publisher.ts'
import { Session, type Ref, type SessionHost, type UnsubscribeReason } from './session.ts'
import type { Stats } from './stats.ts'
import { Subscription, type SubscribedBy } from './subscription.ts'
import type { Transport } from './transport.ts'

// retries of a failed slot release, 1 s, 2 s, 4 s … apart
const SLOT_RELEASE_RETRIES = 4

export interface SessionsOptions {
  engine: Engine
  auth: Pick<AuthService, 'verifyAccess'>
  rules: ChannelRules
  hooks: Hooks
  publisher: Publisher
  hub: Hub
  stats: Stats
  log: Logger
  messageRate: number
  sendBuffer: number
  channelsPerSocket: number
}

/** What a subscription starts with: the replay when `since` was given. */
interface Entry {
  recovered: boolean | undefined
  replay: string[]
  top: number
}

export class Sessions implements SessionHost {
  readonly log: Logger
  readonly stats: Stats
  readonly messageRate: number
  readonly sendBuffer: number
  readonly #o: SessionsOptions
  // presence removals and slot releases still in flight; shutdown waits for them before the engine goes
  readonly #removals = new Set<Promise<void>>()

  constructor (o: SessionsOptions) {
    this.#o = o
    this.log = o.log
    this.stats = o.stats
    this.messageRate = o.messageRate
    this.sendBuffer = o.sendBuffer
  }

  /** Takes an upgraded socket: `ready`, the replay when `since` was given, then live frames. */
  async attach (transport: Transport, a: Admission): Promise<Session> {
    // from here the socket's close gives the slot back
    a.holdsSlot = false
    const session = new Session(this, transport, {
      id: a.connectionId,
      userId: a.userId,
      pathChannel: a.channel,
      remoteAddress: a.remoteAddress,
      identity: a.identity
    })
    this.#o.hub.adopt(session)
    this.log.info({ connectionId: session.id, userId: session.userId, channel: a.channel ?? undefined, remoteAddress: session.remoteAddress }, 'socket open')
    const channel = a.channel
    // the first change of the session's subscriptions: a subscribe the client sends before `ready` waits for it
    await session.queue(async () => {
      if (channel === null) {
        session.open(readyFrameText(null, session.id, session.userId, session.expiresAt ?? null, undefined, a.dataJson))
      } else {
        const sub = new Subscription(session, channel, this.#o.rules.resolve(channel), 'client')
        const entry = await this.#enter(session, sub, a.since)
        if (entry === null) return
        session.open(readyFrameText(channel, session.id, session.userId, session.expiresAt ?? null, entry.recovered, a.dataJson))
        sub.open(entry.replay, entry.top)
      }
      this.stats.handshake.observe((performance.now() - a.startedAt) / 1000)
      // what the connect hooks or the backend chose, as if the server API had asked
      for (const extra of a.channels) await this.subscribe(session, extra, { by: 'server' })
    })
    return session
  }

  // --- subscriptions ------------------------------------------------------------------

  async subscribe (session: Session, channel: string, o: { since?: string, ref?: Ref, by: SubscribedBy }): Promise<void> {
    if (session.closing) return
    try {
      if (!isValidChannel(channel)) throw GatecastError.badChannel()
      if (o.since !== undefined && !isValidId(o.since)) throw GatecastError.badSince()
      // already there: every message since it subscribed reached it, so nothing to replay or double
      const existing = session.subscription(channel)
      if (existing !== undefined) {
        if (o.by === 'server') existing.markServer()
        session.send(subscribedFrameText(channel, o.by, o.ref))
        return
      }
      if (session.subscriptions.length >= this.#o.channelsPerSocket) {
        throw GatecastError.tooManyChannels(`at most ${this.#o.channelsPerSocket} channels per socket`)
      }
      const opts = this.#o.rules.resolve(channel)
      if (o.by === 'client') {
        if (!userMayJoin(channel, opts, session.userId, session.identity.channels)) throw GatecastError.forbidden('channel not allowed for this user')
        const hooks = this.#o.hooks
        if (hooks.judgesSubscribe) {
          await hooks.runSubscribe({ connectionId: session.id, userId: session.userId, channel, identity: session.identity })
          if (session.closing) return
        }
      }
      const sub = new Subscription(session, channel, opts, o.by)
      let entry: Entry | null
      try {
        entry = await this.#enter(session, sub, o.since)
      } catch (err) {
        await this.#exit(session, sub)
        throw this.#engineError(err)
      }
      if (entry === null) return
      session.send(subscribedFrameText(channel, o.by, o.ref, entry.recovered))
      sub.open(entry.replay, entry.top)
    } catch (err) {
      session.failed(err, o.ref, channel)
    }
  }

  async unsubscribe (session: Session, channel: string, reason: UnsubscribeReason, ref?: Ref): Promise<void> {
    try {
      // the name goes into the answer as is
      if (!isValidChannel(channel)) throw GatecastError.badChannel()
      const sub = session.subscription(channel)
      // answered before presence is updated: nothing of the channel can follow it already
      const leaving = sub === undefined ? null : this.#exit(session, sub)
      session.send(unsubscribedFrameText(channel, reason, ref))
      await leaving
    } catch (err) {
      session.failed(err, ref, channel)
    }
  }

  /**
   * Presence, the channel's deliveries, then the history read: what is
   * published meanwhile waits in the subscription. Null when the socket closed
   * meanwhile.
   */
  async #enter (session: Session, sub: Subscription, since: string | undefined): Promise<Entry | null> {
    const { engine, hub } = this.#o
    const channel = sub.channel
    session.add(sub)
    const { joined } = await engine.presence.addConnection({ connectionId: session.id, userId: session.userId, channel })
    if (session.gone) {
      // closed() ran while this was in flight and could not take it out
      this.#removePresence(session, channel)
      return null
    }
    sub.present = true
    // announced now, so a leave can never come without its join; the joiner's own copy waits in the subscription
    if (joined && sub.opts.presence) await engine.broker.publishTransient(channel, presenceFrameText(channel, 'join', session.userId))
    await hub.join(sub)
    const entry: Entry = { recovered: undefined, replay: [], top: 0 }
    if (since !== undefined) {
      const r = await engine.broker.recover(channel, since)
      entry.top = r.top
      // never partial: a replay the socket could not take without being closed as a slow consumer is not started
      entry.recovered = r.recovered && replayBytes(r.frames) <= this.sendBuffer
      if (entry.recovered) entry.replay = r.frames
    }
    return session.closing ? null : entry
  }

  /** Off the channel at once; presence follows. */
  #exit (session: Session, sub: Subscription): Promise<void> {
    session.remove(sub)
    this.#o.hub.leave(sub)
    if (!sub.present) return Promise.resolve()
    sub.present = false
    return this.#removePresence(session, sub.channel)
  }

  #removePresence (session: Session, channel: string): Promise<void> {
    const removal = this.#o.engine.presence.removeConnection({ connectionId: session.id, userId: session.userId, channel })
      .then(({ left }) => { if (left) this.left(channel, session.userId) })
      .catch((err: unknown) => this.log.warn({ err, connectionId: session.id, channel }, 'presence update failed'))
    return this.#track(removal)
  }

  #track (p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => this.#removals.delete(tracked))
    this.#removals.add(tracked)
    return tracked
  }

  // an engine call that failed is the engine's unavailability to the client, not an internal error
  #engineError (err: unknown): unknown {
    if (err instanceof Error && !isGatecastError(err)) {
      this.log.warn({ err: { message: err.message } }, 'subscribe failed in the engine')
      return GatecastError.unavailable()
    }
    return err
  }

  // --- SessionHost ----------------------------------------------------------------

  publish (session: Session, sub: Subscription, data: unknown): Promise<string | null> {
    return this.#o.publisher.publish(sub.channel, data, session.userId, session.id, sub.opts, session)
  }

  verify (token: string): Promise<Identity> {
    return this.#o.auth.verifyAccess(token)
  }

  mayJoin (sub: Subscription, identity: Identity): boolean {
    return userMayJoin(sub.channel, sub.opts, identity.userId, identity.channels)
  }

  drop (session: Session): void {
    this.#o.hub.forget(session)
  }

  closed (session: Session, code: number): void {
    this.#o.hub.gone(session)
    const durationMs = Date.now() - session.openedAt
    const channels = session.channels
    this.stats.closed(code)
    this.log.info({
      connectionId: session.id,
      userId: session.userId,
      channels,
      remoteAddress: session.remoteAddress,
      code,
      durationMs,
      framesIn: session.framesIn,
      framesOut: session.framesOut
    }, 'socket closed')
    for (const sub of session.subscriptions) {
      if (!sub.present) continue
      sub.present = false
      this.#removePresence(session, sub.channel)
    }
    this.#track(this.releaseSlot(session.userId, session.id))
    this.#o.hooks.runClose({ connectionId: session.id, userId: session.userId, channel: session.pathChannel, channels, code, durationMs }, this.log)
  }

  /**
   * Gives a socket slot back. A release lost to an engine blip would keep the slot
   * taken for the node's life (the user locked out at WS_SOCKETS_PER_USER), so it
   * is retried with backoff, for about half a minute; what waits for it is the first try only.
   * Every release goes through here: a close, a refused admission, an abandoned upgrade.
   */
  releaseSlot (userId: string, connectionId: string): Promise<void> {
    const presence = this.#o.engine.presence
    const retry = (attempt: number): void => {
      setTimeout(() => {
        presence.releaseSocket(userId).catch((err: unknown) => {
          if (attempt < SLOT_RELEASE_RETRIES) retry(attempt + 1)
          else this.log.warn({ err, connectionId }, 'socket slot release failed')
        })
      }, 1000 * 2 ** attempt).unref()
    }
    return presence.releaseSocket(userId).catch(() => { retry(0) })
  }

  // --- presence ---------------------------------------------------------------------

  /** A user's last subscription to the channel ended (here, or on a node that died). */
  left (channel: string, userId: string): void {
    if (!this.#o.rules.resolve(channel).presence) return
    this.#o.engine.broker.publishTransient(channel, presenceFrameText(channel, 'leave', userId))
      .catch((err: unknown) => this.log.warn({ err, channel }, 'presence leave failed'))
  }

  /** Resolves when every presence removal in flight has settled. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.#removals])
  }
}

function replayBytes (frames: readonly string[]): number {
  let n = 0
  for (const f of frames) n += Buffer.byteLength(f)
  return n
}
