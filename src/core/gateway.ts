// The gateway's operations: what the server API, plugins (the `gatecast`
// decorator) and client frames do. Cluster-wide through the engine.
import type { Logger } from '../config/logger.ts'
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import type { AuthService } from '../auth/service.ts'
import { ChannelRules, isValidChannel, userMayJoin, type ChannelOptions } from './channels.ts'
import type { GatecastConfig } from '../config/config.ts'
import type { ChannelSummary, Engine, PresenceEntry, StoredMessage } from '../engine/types.ts'
import { isValidId } from '../engine/ids.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { Connection, Hub } from './hub.ts'
import type { Stats } from './stats.ts'
import {
  CloseCodes, directFrameText, MAX_DATA_DEPTH, parseClientFrame, presenceFrameText, readyFrameText, withinDepth,
  type ErrorCode, type PublishFrame, type RefreshFrame
} from '../protocol/frames.ts'
import { extractToken, type Identity, type TokenSources } from '../auth/tokens.ts'

export interface ConnectContext {
  userId: string
  channel: string
  identity: Identity
  remoteAddress: string
}
/** Runs before the upgrade; throw a GatecastError (e.g. 403) to refuse it. */
export type OnConnectHook = (ctx: ConnectContext) => void | Promise<void>

export interface PublishContext {
  channel: string
  data: unknown
  /** null for the server API */
  userId: string | null
  connectionId: string | null
}
/** Runs before fan-out; return `{ data }` to replace the payload, throw a GatecastError to refuse. */
export type OnPublishHook = (ctx: PublishContext) => void | { data: unknown } | Promise<void | { data: unknown }>

export interface CloseContext {
  connectionId: string
  userId: string
  channel: string
  code: number
  durationMs: number
}
export type OnCloseHook = (ctx: CloseContext) => void | Promise<void>

export interface UpgradeRequest {
  channel: string
  since?: string
  origin?: string
  tokens: TokenSources
  remoteAddress: string
}

export interface Admission extends ConnectContext {
  since?: string
  /** performance.now() when the upgrade request arrived */
  startedAt: number
}

export interface UserInfo {
  userId: string
  online: boolean
  connections: number
  channels: string[]
}

const FRAME_ERROR_CODES = new Set<string>(['bad_request', 'forbidden', 'rate_limited', 'too_large', 'internal'])
// after this many invalid frames in a row a client is not confused, it is abusive
const MAX_BAD_FRAMES = 50

function checkDepth (data: unknown): void {
  if (!withinDepth(data)) throw new GatecastError(400, 'bad_request', `data nests deeper than ${MAX_DATA_DEPTH} levels`)
}

export class Gatecast {
  readonly rules: ChannelRules
  readonly #engine: Engine
  readonly #auth: AuthService
  readonly #config: GatecastConfig
  readonly #log: Logger
  readonly #hub: Hub
  readonly #connectHooks: OnConnectHook[] = []
  readonly #publishHooks: OnPublishHook[] = []
  readonly #closeHooks: OnCloseHook[] = []
  #shuttingDown = false
  // presence removals still in flight; shutdown waits for them before the engine goes
  readonly #removals = new Set<Promise<void>>()

  readonly #metrics: Stats

  constructor (engine: Engine, auth: AuthService, config: GatecastConfig, log: Logger, metrics: Stats) {
    this.#engine = engine
    this.#auth = auth
    this.#config = config
    this.#log = log
    this.#metrics = metrics
    this.rules = new ChannelRules({ historySize: config.historySize, historyTtl: config.historyTtl }, config.channels)
    metrics.sources = { socketsByNamespace: () => this.#hub.socketsByNamespace(), engine: () => engine.health() }
    this.#hub = new Hub({
      engine,
      metrics,
      log,
      sendBuffer: config.wsSendBuffer,
      pingInterval: config.wsPingInterval,
      expiryGrace: config.wsExpiryGrace,
      onFrame: (conn, data, isBinary) => this.#onFrame(conn, data, isBinary),
      onClosed: (conn, code) => this.#onClosed(conn, code),
      onPresenceLost: (channel, userId) => { this.#left(channel, userId) }
    })
  }

  get hub (): Hub {
    return this.#hub
  }

  get shuttingDown (): boolean {
    return this.#shuttingDown
  }

  async start (): Promise<void> {
    await this.#engine.start(this.#hub)
  }

  // --- hooks --------------------------------------------------------------------

  onConnect (hook: OnConnectHook): void { this.#connectHooks.push(hook) }
  onPublish (hook: OnPublishHook): void { this.#publishHooks.push(hook) }
  onClose (hook: OnCloseHook): void { this.#closeHooks.push(hook) }

  // --- server operations (API and decorator) ---------------------------------------

  #checkChannel (channel: string): void {
    if (!isValidChannel(channel)) throw new GatecastError(400, 'bad_channel', 'invalid channel name')
  }

  async #runPublishHooks (ctx: PublishContext): Promise<unknown> {
    for (const hook of this.#publishHooks) {
      const out = await hook(ctx)
      if (out !== undefined && out !== null && typeof out === 'object' && 'data' in out) ctx.data = out.data
    }
    return ctx.data
  }

  /**
   * Hands a message to the engine. Not async: without publish hooks everything
   * up to the engine (and, in memory, the fan-out) runs in the caller's turn
   * with no promise of its own. Bad data throws synchronously.
   */
  #publish (channel: string, data: unknown, userId: string | null, connectionId: string | null, opts: ChannelOptions): Promise<string> {
    checkDepth(data)
    if (this.#publishHooks.length === 0) return this.#store(channel, data, userId, opts)
    return this.#runPublishHooks({ channel, data, userId, connectionId }).then(hooked => this.#store(channel, hooked, userId, opts))
  }

  #store (channel: string, data: unknown, userId: string | null, opts: ChannelOptions): Promise<string> {
    const dataJson = JSON.stringify(data)
    if (dataJson === undefined) throw new GatecastError(400, 'bad_request', 'data must be a JSON value')
    return this.#engine.broker.publish(channel, { from: userId, dataJson, ts: Date.now() }, opts)
  }

  /** Publishes as the server (`from: null`) to every socket on the channel, cluster-wide. */
  async publish (channel: string, data: unknown): Promise<{ id: string }> {
    this.#checkChannel(channel)
    const id = await this.#publish(channel, data, null, null, this.rules.resolve(channel))
    this.#metrics.publishedByApi++
    return { id }
  }

  #directFrame (data: unknown): string {
    checkDepth(data)
    return directFrameText(randomUUID(), null, JSON.stringify(data ?? null), Date.now())
  }

  async sendToUser (userId: string, data: unknown): Promise<void> {
    await this.#engine.broker.control({ kind: 'user', userId, frame: this.#directFrame(data) })
  }

  async broadcast (data: unknown): Promise<void> {
    await this.#engine.broker.control({ kind: 'all', frame: this.#directFrame(data) })
  }

  async disconnectUser (userId: string): Promise<void> {
    await this.#engine.broker.control({ kind: 'kick', userId })
  }

  async presence (channel: string): Promise<{ channel: string, users: PresenceEntry[] }> {
    this.#checkChannel(channel)
    return { channel, users: await this.#engine.presence.presence(channel) }
  }

  async history (channel: string, opts: { since?: string, limit?: number } = {}): Promise<{ messages: StoredMessage[], recovered: boolean }> {
    this.#checkChannel(channel)
    if (opts.since !== undefined && !isValidId(opts.since)) throw new GatecastError(400, 'bad_since', 'invalid since id')
    return this.#engine.broker.history(channel, { since: opts.since, limit: opts.limit ?? this.rules.resolve(channel).historySize })
  }

  async channels (): Promise<ChannelSummary[]> {
    return this.#engine.presence.channels()
  }

  async userStatus (userId: string): Promise<UserInfo> {
    const s = await this.#engine.presence.userStatus(userId)
    return { userId, online: s.connections > 0, connections: s.connections, channels: s.channels }
  }

  // --- connections -------------------------------------------------------------------

  /** Every check before an upgrade; throws the GatecastError the client gets as HTTP. */
  async admit (req: UpgradeRequest): Promise<Admission> {
    const startedAt = performance.now()
    if (this.#shuttingDown) throw new GatecastError(503, 'shutting_down', 'server is shutting down')
    if (!this.#engine.isReady()) throw new GatecastError(503, 'unavailable', 'engine unavailable')
    this.#checkChannel(req.channel)
    if (req.since !== undefined && !isValidId(req.since)) throw new GatecastError(400, 'bad_since', 'invalid since id')
    const allowed = this.#config.allowedOrigins
    if (allowed !== null && req.origin !== undefined && !allowed.includes(req.origin)) {
      throw new GatecastError(403, 'origin_forbidden', 'origin not allowed')
    }
    const token = extractToken(req.tokens)
    if (token === null) throw new GatecastError(401, 'token_missing', 'missing token')
    const identity = await this.#auth.verifyAccess(token)
    const opts = this.rules.resolve(req.channel)
    if (!userMayJoin(req.channel, opts, identity.userId, identity.channels)) {
      throw new GatecastError(403, 'channel_forbidden', 'channel not allowed for this user')
    }
    const { connections } = await this.#engine.presence.userStatus(identity.userId)
    if (connections >= this.#config.wsSocketsPerUser) throw new GatecastError(429, 'too_many_sockets', 'too many open sockets for this user')
    const ctx: Admission = { userId: identity.userId, channel: req.channel, identity, remoteAddress: req.remoteAddress, since: req.since, startedAt }
    for (const hook of this.#connectHooks) await hook(ctx)
    return ctx
  }

  /** Takes an upgraded socket: `ready`, the replay when `since` was given, then live frames. */
  async attach (ws: WebSocket, a: Admission): Promise<void> {
    const opts = this.rules.resolve(a.channel)
    const conn = new Connection({
      id: randomUUID(),
      ws,
      userId: a.userId,
      channel: a.channel,
      opts,
      remoteAddress: a.remoteAddress,
      jti: a.identity.jti,
      expiresAt: a.identity.exp,
      burst: this.#config.wsMessageRate * 2
    })
    const hub = this.#hub
    hub.adopt(conn)
    this.#log.info({ connectionId: conn.id, userId: conn.userId, channel: conn.channel, remoteAddress: conn.remoteAddress }, 'socket open')
    const { joined } = await this.#engine.presence.addConnection({ connectionId: conn.id, userId: conn.userId, channel: conn.channel })
    // announced now, so a leave (on close) can never come without its join; the
    // joiner's own copy waits in conn.pending behind `ready`
    if (joined && opts.presence) await this.#engine.broker.publishTransient(conn.channel, presenceFrameText(conn.channel, 'join', conn.userId))
    let recovered: boolean | undefined
    let replay: string[] = []
    let top = 0
    // subscribed before history is read: what is published meanwhile waits in conn.pending
    await hub.join(conn)
    if (a.since !== undefined) {
      const r = await this.#engine.broker.recover(conn.channel, a.since)
      recovered = r.recovered
      replay = r.frames
      top = r.top
    }
    if (conn.closing) return
    hub.open(conn, readyFrameText(conn.channel, conn.id, conn.userId, conn.expiresAt ?? null, recovered), replay, top)
    this.#metrics.handshake.observe((performance.now() - a.startedAt) / 1000)
  }

  #onClosed (conn: Connection, code: number): void {
    const durationMs = Date.now() - conn.openedAt
    this.#metrics.closed(code)
    this.#log.info({
      connectionId: conn.id,
      userId: conn.userId,
      channel: conn.channel,
      remoteAddress: conn.remoteAddress,
      code,
      durationMs,
      framesIn: conn.framesIn,
      framesOut: conn.framesOut
    }, 'socket closed')
    const removal = this.#engine.presence.removeConnection({ connectionId: conn.id, userId: conn.userId, channel: conn.channel })
      .then(({ left }) => { if (left) this.#left(conn.channel, conn.userId) })
      .catch((err: unknown) => this.#log.warn({ err, connectionId: conn.id }, 'presence update failed'))
      .finally(() => this.#removals.delete(removal))
    this.#removals.add(removal)
    for (const hook of this.#closeHooks) {
      Promise.resolve().then(() => hook({ connectionId: conn.id, userId: conn.userId, channel: conn.channel, code, durationMs }))
        .catch((err: unknown) => this.#log.error({ err }, 'onClose hook failed'))
    }
  }

  #left (channel: string, userId: string): void {
    if (!this.rules.resolve(channel).presence) return
    this.#engine.broker.publishTransient(channel, presenceFrameText(channel, 'leave', userId))
      .catch((err: unknown) => this.#log.warn({ err, channel }, 'presence leave failed'))
  }

  // --- client frames -------------------------------------------------------------------

  #error (conn: Connection, code: ErrorCode, message: string, ref?: string | number): void {
    this.#hub.send(conn, JSON.stringify(ref === undefined ? { type: 'error', code, message } : { type: 'error', ref, code, message }))
  }

  /** Publishes: `rate` per second, bursts to 2×; a second's worth refused without the bucket refilling closes 4429. */
  #allow (conn: Connection): boolean {
    const rate = this.#config.wsMessageRate
    const now = Date.now()
    const burst = rate * 2
    conn.tokens = Math.min(burst, conn.tokens + (now - conn.lastRefill) * rate / 1000)
    conn.lastRefill = now
    if (conn.tokens >= 1) {
      conn.tokens -= 1
      if (conn.tokens >= burst - 1) conn.rejected = 0
      return true
    }
    if (++conn.rejected >= rate) this.#hub.close(conn, CloseCodes.rateLimited, 'message rate exceeded')
    return false
  }

  #onFrame (conn: Connection, data: Buffer, isBinary: boolean): void {
    const parsed = isBinary ? { ok: false as const, message: 'binary frames are not supported' } : parseClientFrame(data.toString())
    if (!parsed.ok) {
      if (++conn.badFrames >= MAX_BAD_FRAMES) this.#hub.close(conn, CloseCodes.policy, 'too many invalid frames')
      else this.#error(conn, 'bad_request', parsed.message, 'ref' in parsed ? parsed.ref : undefined)
      return
    }
    conn.badFrames = 0
    const frame = parsed.frame
    switch (frame.type) {
      case 'ping':
        this.#hub.send(conn, '{"type":"pong"}')
        break
      case 'publish':
        if (!this.#allow(conn)) {
          if (!conn.closing) this.#error(conn, 'rate_limited', 'too many messages', frame.ref)
          return
        }
        try {
          this.#clientPublish(conn, frame)
        } catch (err) {
          this.#frameFailed(conn, err, frame.ref)
        }
        break
      case 'refresh':
        this.#refresh(conn, frame).catch((err: unknown) => this.#frameFailed(conn, err))
        break
    }
  }

  #frameFailed (conn: Connection, err: unknown, ref?: string | number): void {
    if (isGatecastError(err)) {
      const code = FRAME_ERROR_CODES.has(err.code) ? err.code as ErrorCode : err.statusCode < 500 ? 'forbidden' : 'internal'
      this.#error(conn, code, err.message, ref)
      return
    }
    this.#log.error({ err, connectionId: conn.id }, 'frame handling failed')
    this.#error(conn, 'internal', 'internal error', ref)
  }

  /** Throws synchronously for what is refused before the engine; the engine's answer comes later. */
  #clientPublish (conn: Connection, frame: PublishFrame): void {
    if (!conn.opts.publish) throw new GatecastError(403, 'forbidden', 'clients may not publish on this channel')
    const ref = frame.ref
    this.#publish(conn.channel, frame.data, conn.userId, conn.id, conn.opts).then((id) => {
      // nothing may escape as an unhandled rejection: that would end the process
      try {
        this.#metrics.publishedByClient++
        if (ref !== undefined) this.#hub.send(conn, `{"type":"ack","ref":${JSON.stringify(ref)},"id":"${id}"}`)
      } catch (err) {
        this.#frameFailed(conn, err, ref)
      }
    }, (err: unknown) => this.#frameFailed(conn, err, ref))
  }

  async #refresh (conn: Connection, frame: RefreshFrame): Promise<void> {
    const identity = await this.#auth.verifyAccess(frame.token)
    if (identity.userId !== conn.userId) throw new GatecastError(403, 'forbidden', 'token belongs to another user')
    if (!userMayJoin(conn.channel, conn.opts, identity.userId, identity.channels)) {
      this.#hub.close(conn, CloseCodes.forbidden, 'channel no longer allowed')
      return
    }
    conn.jti = identity.jti
    conn.expiresAt = identity.exp
    this.#hub.send(conn, JSON.stringify({ type: 'refreshed', expiresAt: identity.exp ?? null }))
  }

  // --- shutdown ----------------------------------------------------------------------

  async shutdown (deadlineMs = 10_000): Promise<void> {
    if (this.#shuttingDown) return
    this.#shuttingDown = true
    await this.#hub.closeAll(deadlineMs)
    await Promise.allSettled([...this.#removals])
  }
}
