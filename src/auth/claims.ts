// Access-token claims: what a verified payload says about its holder, what a
// verification failure tells the client, and what Gatecast puts in the tokens
// it issues.
import { randomUUID } from 'node:crypto'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import type { Sign } from './jwt.ts'

export interface Identity {
  userId: string
  name?: string
  roles: string[]
  /** channel patterns; undefined = every channel */
  channels?: string[]
  jti?: string
  /** seconds since epoch; undefined for tokens without `exp` */
  exp?: number
  /** every claim of the token, as verified (for the backend's `connect` call); not kept by open sockets */
  claims?: Readonly<Record<string, unknown>>
}

export interface IssueClaims {
  sub: string
  name?: string
  roles?: string[]
  channels?: string[]
}

const stringArray = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every(x => typeof x === 'string') ? v : undefined

// RFC 7519 makes jti a string, but issuers send numbers too; ignoring one would
// leave its token impossible to revoke
export const jtiOf = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined

export function identityFromClaims (payload: unknown, userClaim: string): Identity {
  if (payload === null || typeof payload !== 'object') throw GatecastError.tokenInvalid('token payload is not an object')
  const p = payload as Record<string, unknown>
  // PHP backends (tinywan/php-jwt and friends) put the id in `user_id`
  const raw = p[userClaim] ?? p.user_id
  if ((typeof raw !== 'string' || raw === '') && typeof raw !== 'number') {
    throw GatecastError.tokenInvalid(`token has no user id (claim ${userClaim})`)
  }
  const channels = p.channels === undefined ? undefined : stringArray(p.channels)
  if (p.channels !== undefined && channels === undefined) throw GatecastError.tokenInvalid('claim channels must be an array of strings')
  return {
    userId: String(raw),
    name: typeof p.name === 'string' ? p.name : undefined,
    roles: stringArray(p.roles) ?? [],
    channels,
    jti: jtiOf(p.jti),
    exp: typeof p.exp === 'number' ? p.exp : undefined,
    claims: p
  }
}

const JWT_ERRORS: Record<string, [string, string]> = {
  FAST_JWT_EXPIRED: ['token_expired', 'token expired'],
  FAST_JWT_INACTIVE: ['token_not_active', 'token not yet valid'],
  FAST_JWT_INVALID_ALGORITHM: ['token_invalid', 'token algorithm not accepted'],
  FAST_JWT_INVALID_SIGNATURE: ['token_invalid', 'invalid token signature'],
  FAST_JWT_MISSING_SIGNATURE: ['token_invalid', 'unsigned token'],
  FAST_JWT_INVALID_CLAIM_VALUE: ['token_invalid', 'token claims not accepted (issuer or audience)'],
  FAST_JWT_MISSING_REQUIRED_CLAIM: ['token_invalid', 'token misses a required claim'],
  FAST_JWT_INVALID_CRIT_HEADER: ['token_invalid', 'token has an unsupported critical header']
}

/** Any verification failure becomes a 401 with a stable code and no internals. */
export function tokenError (err: unknown): GatecastError {
  if (isGatecastError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  // fast-jwt wraps what the key function throws (unknown kid, alg, JWKS down): ours says it better
  if (code === 'FAST_JWT_KEY_FETCHING_ERROR') {
    const cause = (err as { originalError?: unknown }).originalError
    if (isGatecastError(cause)) return cause
  }
  const mapped = typeof code === 'string' ? JWT_ERRORS[code] : undefined
  return new GatecastError(401, mapped?.[0] ?? 'token_invalid', mapped?.[1] ?? 'malformed token')
}

/**
 * An access token valid `ttlSeconds`, with `iat`, `exp` and a `jti`; `sign` adds
 * the kid, issuer and audience. Used by login, refresh and the CLI.
 */
export function signAccessToken (sign: Sign, claims: IssueClaims, ttlSeconds: number): string {
  const payload: Record<string, unknown> = { sub: claims.sub, name: claims.name ?? claims.sub, jti: randomUUID() }
  if (claims.roles !== undefined && claims.roles.length > 0) payload.roles = claims.roles
  if (claims.channels !== undefined) payload.channels = claims.channels
  const iat = Math.floor(Date.now() / 1000)
  payload.iat = iat
  payload.exp = iat + ttlSeconds
  return sign(payload)
}
