// A session's life on this node: set up on an admitted upgrade (presence,
// subscription, recovery, `ready`), served while open (SessionHost), and
// taken out of presence when its socket goes.
import { randomUUID } from 'node:crypto'
import type { Logger } from '../config/logger.ts'
import type { AuthService } from '../auth/service.ts'
import type { Identity } from '../auth/claims.ts'
import type { Engine } from '../engine/types.ts'
import { presenceFrameText, readyFrameText } from '../protocol/frames.ts'
import type { Admission } from './admission.ts'
import { userMayJoin, type ChannelOptions, type ChannelRules } from './channels.ts'
import type { Hooks } from './hooks.ts'
import type { Hub } from './hub.ts'
import type { Publisher } from './publisher.ts'
import { Session, type SessionHost } from './session.ts'
import type { Stats } from './stats.ts'
import type { Transport } from './transport.ts'

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
}

export class Sessions implements SessionHost {
  readonly log: Logger
  readonly stats: Stats
  readonly messageRate: number
  readonly sendBuffer: number
  readonly #o: SessionsOptions
  // presence removals still in flight; shutdown waits for them before the engine goes
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
    const { engine, hub } = this.#o
    const opts = this.#o.rules.resolve(a.channel)
    const session = new Session(this, transport, {
      id: randomUUID(),
      userId: a.userId,
      channel: a.channel,
      opts,
      remoteAddress: a.remoteAddress,
      jti: a.identity.jti,
      expiresAt: a.identity.exp
    })
    hub.adopt(session)
    this.log.info({ connectionId: session.id, userId: session.userId, channel: session.channel, remoteAddress: session.remoteAddress }, 'socket open')
    const { joined } = await engine.presence.addConnection({ connectionId: session.id, userId: session.userId, channel: session.channel })
    // announced now, so a leave (on close) can never come without its join; the
    // joiner's own copy waits behind `ready`
    if (joined && opts.presence) await engine.broker.publishTransient(session.channel, presenceFrameText(session.channel, 'join', session.userId))
    let recovered: boolean | undefined
    let replay: string[] = []
    let top = 0
    // subscribed before history is read: what is published meanwhile waits in the session
    await hub.join(session)
    if (a.since !== undefined) {
      const r = await engine.broker.recover(session.channel, a.since)
      recovered = r.recovered
      replay = r.frames
      top = r.top
    }
    if (session.closing) return session
    session.open(readyFrameText(session.channel, session.id, session.userId, session.expiresAt ?? null, recovered), replay, top)
    this.stats.handshake.observe((performance.now() - a.startedAt) / 1000)
    return session
  }

  // --- SessionHost ----------------------------------------------------------------

  publish (session: Session, data: unknown): Promise<string> {
    return this.#o.publisher.publish(session.channel, data, session.userId, session.id, session.opts)
  }

  verify (token: string): Promise<Identity> {
    return this.#o.auth.verifyAccess(token)
  }

  mayJoin (channel: string, opts: ChannelOptions, identity: Identity): boolean {
    return userMayJoin(channel, opts, identity.userId, identity.channels)
  }

  drop (session: Session): void {
    this.#o.hub.forget(session)
  }

  closed (session: Session, code: number): void {
    this.#o.hub.gone(session)
    const durationMs = Date.now() - session.openedAt
    this.stats.closed(code)
    this.log.info({
      connectionId: session.id,
      userId: session.userId,
      channel: session.channel,
      remoteAddress: session.remoteAddress,
      code,
      durationMs,
      framesIn: session.framesIn,
      framesOut: session.framesOut
    }, 'socket closed')
    const removal = this.#o.engine.presence.removeConnection({ connectionId: session.id, userId: session.userId, channel: session.channel })
      .then(({ left }) => { if (left) this.left(session.channel, session.userId) })
      .catch((err: unknown) => this.log.warn({ err, connectionId: session.id }, 'presence update failed'))
      .finally(() => this.#removals.delete(removal))
    this.#removals.add(removal)
    this.#o.hooks.runClose({ connectionId: session.id, userId: session.userId, channel: session.channel, code, durationMs }, this.log)
  }

  // --- presence ---------------------------------------------------------------------

  /** A user's last connection left the channel (here, or on a node that died). */
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
