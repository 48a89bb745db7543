// One object per socket that owns its state: what it waits to send, its
// message budget, its token's expiry, and the frames it receives (publish,
// ping, refresh). It reaches the rest of the node through SessionHost.
import type { Logger } from '../config/logger.ts'
import type { Identity } from '../auth/claims.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { CloseCodes, ERROR_CODES, type ErrorCode } from '../protocol/codes.ts'
import { parseClientFrame, type PublishFrame, type RefreshFrame } from '../protocol/frames.ts'
import { frameText } from '../protocol/wire.ts'
import type { ChannelOptions } from './channels.ts'
import { MessageBudget } from './message-budget.ts'
import type { Stats } from './stats.ts'
import type { Transport, TransportHandler } from './transport.ts'

/** What a session needs of its node. */
export interface SessionHost {
  readonly log: Logger
  readonly stats: Stats
  /** publishes per second per socket; bursts to twice that */
  readonly messageRate: number
  /** bytes queued to one socket before it is closed as a slow consumer */
  readonly sendBuffer: number
  publish (session: Session, data: unknown): Promise<string>
  verify (token: string): Promise<Identity>
  mayJoin (channel: string, opts: ChannelOptions, identity: Identity): boolean
  /** the session stopped taking traffic (closing): out of every registry */
  drop (session: Session): void
  /** the socket is gone */
  closed (session: Session, code: number): void
}

export interface SessionInit {
  id: string
  userId: string
  channel: string
  opts: ChannelOptions
  remoteAddress: string
  jti?: string
  /** token `exp`, seconds */
  expiresAt?: number
}

const FRAME_ERROR_CODES = new Set<string>(ERROR_CODES)
// after this many invalid frames in a row a client is not confused, it is abusive
const MAX_BAD_FRAMES = 50

export class Session implements TransportHandler {
  readonly id: string
  readonly userId: string
  readonly channel: string
  readonly opts: ChannelOptions
  readonly remoteAddress: string
  readonly openedAt = Date.now()
  readonly transport: Transport
  #jti: string | undefined
  #expiresAt: number | undefined
  // answered since the last ping
  #alive = true
  #closing = false
  #framesIn = 0
  #framesOut = 0
  /**
   * Until `ready` is out, frames wait here as [seq, frame, seq, frame, …]:
   * `ready` stays first, and live frames meet a `since` replay without a gap or
   * a duplicate. seq 0: not from history (acks, directs, presence).
   */
  #pending: Array<number | Buffer> | null = []
  readonly #host: SessionHost
  readonly #budget: MessageBudget
  #badFrames = 0

  constructor (host: SessionHost, transport: Transport, init: SessionInit) {
    this.#host = host
    this.transport = transport
    this.id = init.id
    this.userId = init.userId
    this.channel = init.channel
    this.opts = init.opts
    this.remoteAddress = init.remoteAddress
    this.#jti = init.jti
    this.#expiresAt = init.expiresAt
    this.#budget = new MessageBudget(host.messageRate)
    transport.bind(this)
  }

  /** the token's id, for revocation */
  get jti (): string | undefined { return this.#jti }
  /** the token's `exp`, seconds; undefined for tokens without one */
  get expiresAt (): number | undefined { return this.#expiresAt }
  /** no traffic to or from it any more */
  get closing (): boolean { return this.#closing }
  get framesIn (): number { return this.#framesIn }
  get framesOut (): number { return this.#framesOut }

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

  // --- sending -----------------------------------------------------------------

  /** A frame of a fan-out (the same bytes for every socket); `seq` is its history sequence, 0 when not from history. */
  offer (seq: number, framed: Buffer): void {
    if (this.#pending !== null) this.#pending.push(seq, framed)
    else this.#write(framed)
  }

  /** One frame to this socket alone (ack, error, pong…): held back until `ready` is out. */
  send (payload: string): void {
    this.offer(0, frameText(payload))
  }

  /**
   * Goes live: `ready`, the replay, then what waited, less what the replay
   * already held (history sequence up to `top`).
   */
  open (ready: string, replay: readonly string[], top: number): void {
    const pending = this.#pending
    this.#pending = null
    this.#write(frameText(ready))
    for (const frame of replay) this.#write(frameText(frame))
    if (pending === null) return
    for (let i = 0; i < pending.length; i += 2) {
      const seq = pending[i] as number
      if (seq === 0 || seq > top) this.#write(pending[i + 1] as Buffer)
    }
  }

  #write (framed: Buffer): void {
    if (this.#closing) return
    const host = this.#host
    const buffered = this.transport.write(framed)
    this.#framesOut++
    host.stats.framesOut++
    // what waits for this turn's flush is no backlog yet: the transport offers it to the kernel first
    if (buffered > host.sendBuffer && this.transport.backlog() > host.sendBuffer) this.close(CloseCodes.slowConsumer, 'slow consumer')
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
      else this.#error('bad_request', parsed.message, 'ref' in parsed ? parsed.ref : undefined)
      return
    }
    this.#badFrames = 0
    const frame = parsed.frame
    switch (frame.type) {
      case 'ping':
        this.send('{"type":"pong"}')
        break
      case 'publish':
        if (!this.#allowed(frame.ref)) return
        try {
          this.#publish(frame)
        } catch (err) {
          this.#failed(err, frame.ref)
        }
        break
      case 'refresh':
        this.#refresh(frame).catch((err: unknown) => this.#failed(err))
        break
    }
  }

  /** Spends one publish of the budget; past it the client is told, and past a second's worth the socket closes 4429. */
  #allowed (ref: string | number | undefined): boolean {
    const verdict = this.#budget.take()
    if (verdict === 'allowed') return true
    if (verdict === 'exceeded') this.close(CloseCodes.rateLimited, 'message rate exceeded')
    else this.#error('rate_limited', 'too many messages', ref)
    return false
  }

  /** Throws synchronously for what is refused before the engine; the engine's answer comes later. */
  #publish (frame: PublishFrame): void {
    if (!this.opts.publish) throw GatecastError.forbidden('clients may not publish on this channel')
    const ref = frame.ref
    this.#host.publish(this, frame.data).then((id) => {
      // nothing may escape as an unhandled rejection: that would end the process
      try {
        this.#host.stats.publishedByClient++
        if (ref !== undefined) this.send(`{"type":"ack","ref":${JSON.stringify(ref)},"id":"${id}"}`)
      } catch (err) {
        this.#failed(err, ref)
      }
    }, (err: unknown) => this.#failed(err, ref))
  }

  async #refresh (frame: RefreshFrame): Promise<void> {
    const identity = await this.#host.verify(frame.token)
    if (identity.userId !== this.userId) throw GatecastError.forbidden('token belongs to another user')
    if (!this.#host.mayJoin(this.channel, this.opts, identity)) {
      this.close(CloseCodes.forbidden, 'channel no longer allowed')
      return
    }
    this.#jti = identity.jti
    this.#expiresAt = identity.exp
    this.send(JSON.stringify({ type: 'refreshed', expiresAt: identity.exp ?? null }))
  }

  #error (code: ErrorCode, message: string, ref?: string | number): void {
    this.send(JSON.stringify(ref === undefined ? { type: 'error', code, message } : { type: 'error', ref, code, message }))
  }

  #failed (err: unknown, ref?: string | number): void {
    if (isGatecastError(err)) {
      const code = FRAME_ERROR_CODES.has(err.code) ? err.code as ErrorCode : err.statusCode < 500 ? 'forbidden' : 'internal'
      this.#error(code, err.message, ref)
      return
    }
    this.#host.log.error({ err, connectionId: this.id }, 'frame handling failed')
    this.#error('internal', 'internal error', ref)
  }
}
