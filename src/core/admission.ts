// Every check before an upgrade, in the order that costs least first: a
// refused client gets its HTTP status and never a socket.
import type { Logger } from '../config/logger.ts'
import type { AuthService } from '../auth/service.ts'
import { extractToken, type TokenSources } from '../auth/extract.ts'
import type { Engine } from '../engine/types.ts'
import { isValidId } from '../engine/ids.ts'
import { GatecastError } from '../protocol/errors.ts'
import { MAX_DATA_DEPTH, withinDepth } from '../protocol/frames.ts'
import { isValidChannel, userMayJoin, type ChannelRules } from './channels.ts'
import type { ConnectContext, Hooks } from './hooks.ts'

export interface UpgradeRequest {
  /** the path channel; null on `/ws` and `/` */
  channel: string | null
  since?: string
  origin?: string
  tokens: TokenSources
  remoteAddress: string
}

export interface Admission extends ConnectContext {
  since?: string
  /** performance.now() when the upgrade request arrived */
  startedAt: number
  /**
   * The user's socket slot is reserved for this upgrade. Whoever takes the
   * admission over (the session, or the one who gives it up) clears it.
   */
  holdsSlot: boolean
  /** subscribed server-side after `ready` (connect hooks, the backend) */
  channels: string[]
  /** JSON of the connect hooks' (or the backend's) `data`, for `ready`; undefined: none */
  dataJson: string | undefined
  /** connect hooks (or the backend) accepted it: they are owed a close, even if no socket comes */
  connected: boolean
}

export interface AdmissionRules {
  engine: Pick<Engine, 'isReady' | 'presence' | 'broker'>
  auth: Pick<AuthService, 'verifyAccess'>
  rules: ChannelRules
  hooks: Hooks
  /** null: any origin */
  allowedOrigins: readonly string[] | null
  socketsPerUser: number
  shuttingDown: () => boolean
  /** gives a socket slot back, retrying what the engine fails (never rejects) */
  releaseSlot: (userId: string, connectionId: string) => Promise<void>
  log: Logger
}

/** Resolves to the admitted connection, or throws the GatecastError the client gets as HTTP. */
export async function admit (a: AdmissionRules, req: UpgradeRequest): Promise<Admission> {
  const startedAt = performance.now()
  if (a.shuttingDown()) throw GatecastError.shuttingDown()
  if (!a.engine.isReady()) throw GatecastError.unavailable()
  const channel = req.channel
  if (channel !== null && !isValidChannel(channel)) throw GatecastError.badChannel()
  if (req.since !== undefined && (channel === null || !isValidId(req.since))) {
    throw GatecastError.badSince(channel === null ? 'since needs a path channel; send it with subscribe' : undefined)
  }
  if (a.allowedOrigins !== null && req.origin !== undefined && !a.allowedOrigins.includes(req.origin)) {
    throw new GatecastError(403, 'origin_forbidden', 'origin not allowed')
  }
  const token = extractToken(req.tokens)
  if (token === null) throw GatecastError.tokenMissing()
  const identity = await a.auth.verifyAccess(token)
  if (channel !== null && !userMayJoin(channel, a.rules.resolve(channel), identity.userId, identity.channels)) {
    throw new GatecastError(403, 'channel_forbidden', 'channel not allowed for this user')
  }
  // taken before the hooks and given back on any refusal, so concurrent upgrades
  // (and hooks that await I/O) never let a user past the cap
  if (!await a.engine.presence.reserveSocket(identity.userId, a.socketsPerUser)) {
    throw new GatecastError(429, 'too_many_sockets', 'too many open sockets for this user')
  }
  const ctx: Admission = {
    connectionId: a.engine.broker.connectionId(),
    userId: identity.userId,
    channel,
    identity,
    remoteAddress: req.remoteAddress,
    since: req.since,
    startedAt,
    holdsSlot: true,
    channels: [],
    dataJson: undefined,
    connected: false
  }
  try {
    if (a.hooks.judgesConnect) {
      const extra = await a.hooks.runConnect(ctx)
      ctx.connected = true
      if (extra.channels !== undefined) ctx.channels = extra.channels
      if (extra.data !== undefined) ctx.dataJson = dataJsonOf(extra.data)
    }
    if (channel !== null && a.hooks.judgesSubscribe) {
      await a.hooks.runSubscribe({ connectionId: ctx.connectionId, userId: ctx.userId, channel, identity })
    }
  } catch (err) {
    await giveUp(a, ctx)
    throw err
  }
  return ctx
}

// the close code a client sees for a connection that ended without a close frame
const NEVER_OPENED = 1006

function dataJsonOf (data: unknown): string {
  if (!withinDepth(data)) throw GatecastError.badRequest(`connect data nests deeper than ${MAX_DATA_DEPTH} levels`)
  const json = JSON.stringify(data)
  if (json === undefined) throw GatecastError.badRequest('connect data must be a JSON value')
  return json
}

/**
 * Gives the socket slot back for an admission that no session took over
 * (once). Whoever accepted its connect hears a close (1006: no socket ever
 * opened), so a backend that counts connects and closes stays even.
 */
export async function giveUp (a: Pick<AdmissionRules, 'releaseSlot' | 'hooks' | 'log'>, admission: Admission): Promise<void> {
  if (!admission.holdsSlot) return
  admission.holdsSlot = false
  if (admission.connected) {
    const { connectionId, userId, channel } = admission
    a.hooks.runClose({ connectionId, userId, channel, channels: [], code: NEVER_OPENED, durationMs: 0 }, a.log)
  }
  await a.releaseSlot(admission.userId, admission.connectionId)
}
