// Every check before an upgrade, in the order that costs least first: a
// refused client gets its HTTP status and never a socket.
import type { AuthService } from '../auth/service.ts'
import { extractToken, type TokenSources } from '../auth/extract.ts'
import type { Engine } from '../engine/types.ts'
import { isValidId } from '../engine/ids.ts'
import { GatecastError } from '../protocol/errors.ts'
import { isValidChannel, userMayJoin, type ChannelRules } from './channels.ts'
import type { ConnectContext, Hooks } from './hooks.ts'

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

export interface AdmissionRules {
  engine: Pick<Engine, 'isReady' | 'presence'>
  auth: Pick<AuthService, 'verifyAccess'>
  rules: ChannelRules
  hooks: Hooks
  /** null: any origin */
  allowedOrigins: readonly string[] | null
  socketsPerUser: number
  shuttingDown: () => boolean
}

/** Resolves to the admitted connection, or throws the GatecastError the client gets as HTTP. */
export async function admit (a: AdmissionRules, req: UpgradeRequest): Promise<Admission> {
  const startedAt = performance.now()
  if (a.shuttingDown()) throw GatecastError.shuttingDown()
  if (!a.engine.isReady()) throw GatecastError.unavailable()
  if (!isValidChannel(req.channel)) throw GatecastError.badChannel()
  if (req.since !== undefined && !isValidId(req.since)) throw GatecastError.badSince()
  if (a.allowedOrigins !== null && req.origin !== undefined && !a.allowedOrigins.includes(req.origin)) {
    throw new GatecastError(403, 'origin_forbidden', 'origin not allowed')
  }
  const token = extractToken(req.tokens)
  if (token === null) throw GatecastError.tokenMissing()
  const identity = await a.auth.verifyAccess(token)
  const opts = a.rules.resolve(req.channel)
  if (!userMayJoin(req.channel, opts, identity.userId, identity.channels)) {
    throw new GatecastError(403, 'channel_forbidden', 'channel not allowed for this user')
  }
  const { connections } = await a.engine.presence.userStatus(identity.userId)
  if (connections >= a.socketsPerUser) throw new GatecastError(429, 'too_many_sockets', 'too many open sockets for this user')
  const ctx: Admission = { userId: identity.userId, channel: req.channel, identity, remoteAddress: req.remoteAddress, since: req.since, startedAt }
  await a.hooks.runConnect(ctx)
  return ctx
}
