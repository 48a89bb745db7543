// Access tokens: @fastify/jwt options from config, where a token is read from on
// an upgrade, and how verified claims become an identity.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyJWTOptions, JWT } from '@fastify/jwt'
import { ConfigError, type GatecastConfig } from './config.ts'
import { GatecastError, isGatecastError } from './errors.ts'

export interface Identity {
  userId: string
  name?: string
  roles: string[]
  /** channel patterns; undefined = every channel */
  channels?: string[]
  jti?: string
  /** seconds since epoch; undefined for tokens without `exp` */
  exp?: number
}

export interface IssueClaims {
  sub: string
  name?: string
  roles?: string[]
  channels?: string[]
}

// Clocks of token issuers drift; a few seconds is the usual allowance.
const CLOCK_TOLERANCE_MS = 5000

function readKey (file: string | undefined, what: string): string | undefined {
  if (file === undefined) return undefined
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${what} ${file}: ${(err as Error).message}`)
  }
}

export function jwtPluginOptions (config: GatecastConfig, hmacSecret: string | undefined): FastifyJWTOptions {
  const alg = config.jwtAlgorithm
  let secret: FastifyJWTOptions['secret']
  if (alg.startsWith('HS')) {
    if (hmacSecret === undefined) throw new ConfigError('JWT_SECRET is required for HS algorithms')
    secret = hmacSecret
  } else {
    const publicKey = readKey(config.jwtPublicKeyFile, 'JWT_PUBLIC_KEY_FILE')
    if (publicKey === undefined) throw new ConfigError(`JWT_ALGORITHM ${alg} needs JWT_PUBLIC_KEY_FILE (PEM)`)
    const privateKey = readKey(config.jwtPrivateKeyFile, 'JWT_PRIVATE_KEY_FILE')
    secret = privateKey === undefined ? { public: publicKey } : { public: publicKey, private: privateKey }
  }
  return {
    secret,
    sign: {
      algorithm: alg,
      // @fastify/jwt reads numbers as seconds
      expiresIn: config.accessTokenTtl,
      ...(config.jwtIssuer !== undefined ? { iss: config.jwtIssuer } : {}),
      ...(config.jwtAudience !== undefined ? { aud: config.jwtAudience } : {})
    },
    verify: {
      algorithms: [alg],
      clockTolerance: CLOCK_TOLERANCE_MS,
      // fast-jwt only compares iss/aud when present; configured means required
      requiredClaims: [...(config.jwtIssuer !== undefined ? ['iss'] : []), ...(config.jwtAudience !== undefined ? ['aud'] : [])],
      ...(config.jwtIssuer !== undefined ? { allowedIss: config.jwtIssuer } : {}),
      ...(config.jwtAudience !== undefined ? { allowedAud: config.jwtAudience } : {})
    }
  }
}

const BEARER_RE = /^Bearer\s+(\S+)$/i

/** The parts of a request a token can come from, so routes need not keep the request. */
export interface TokenSources {
  authorization?: string
  protocol?: string | string[]
  query: Record<string, unknown>
}

/**
 * Reads the token from, in order: Authorization header, `bearer.<jwt>`
 * subprotocol, `?token=`, `?Authorization=`. Tokens found in more than one
 * place must agree.
 */
export function extractToken (src: TokenSources): string | null {
  const found: string[] = []
  if (typeof src.authorization === 'string') {
    const m = BEARER_RE.exec(src.authorization.trim())
    if (m === null) throw new GatecastError(401, 'token_invalid', 'Authorization header must be "Bearer <token>"')
    found.push(m[1])
  }
  const protocols = Array.isArray(src.protocol) ? src.protocol.join(',') : src.protocol
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const t = p.trim()
      if (t.startsWith('bearer.')) found.push(t.slice(7))
    }
  }
  const q = src.query
  if (typeof q.token === 'string') found.push(q.token)
  if (typeof q.Authorization === 'string') {
    const m = BEARER_RE.exec(q.Authorization.trim())
    found.push(m === null ? q.Authorization.trim() : m[1])
  }
  if (found.length === 0) return null
  const token = found[0]
  if (token === '' || found.some(t => t !== token)) throw new GatecastError(401, 'token_invalid', 'conflicting or empty tokens')
  return token
}

const stringArray = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every(x => typeof x === 'string') ? v : undefined

export function identityFromClaims (payload: unknown, userClaim: string): Identity {
  if (payload === null || typeof payload !== 'object') throw new GatecastError(401, 'token_invalid', 'token payload is not an object')
  const p = payload as Record<string, unknown>
  // PHP backends (tinywan/php-jwt and friends) put the id in `user_id`
  const raw = p[userClaim] ?? p.user_id
  if ((typeof raw !== 'string' || raw === '') && typeof raw !== 'number') {
    throw new GatecastError(401, 'token_invalid', `token has no user id (claim ${userClaim})`)
  }
  const channels = p.channels === undefined ? undefined : stringArray(p.channels)
  if (p.channels !== undefined && channels === undefined) throw new GatecastError(401, 'token_invalid', 'claim channels must be an array of strings')
  return {
    userId: String(raw),
    name: typeof p.name === 'string' ? p.name : undefined,
    roles: stringArray(p.roles) ?? [],
    channels,
    jti: typeof p.jti === 'string' ? p.jti : undefined,
    exp: typeof p.exp === 'number' ? p.exp : undefined
  }
}

const JWT_ERRORS: Record<string, [string, string]> = {
  FAST_JWT_EXPIRED: ['token_expired', 'token expired'],
  FAST_JWT_INACTIVE: ['token_not_active', 'token not yet valid'],
  FAST_JWT_INVALID_ALGORITHM: ['token_invalid', 'token algorithm not accepted'],
  FAST_JWT_INVALID_SIGNATURE: ['token_invalid', 'invalid token signature'],
  FAST_JWT_MISSING_SIGNATURE: ['token_invalid', 'unsigned token'],
  FAST_JWT_INVALID_CLAIM_VALUE: ['token_invalid', 'token claims not accepted (issuer or audience)'],
  FAST_JWT_MISSING_REQUIRED_CLAIM: ['token_invalid', 'token misses a required claim']
}

/** Any verification failure becomes a 401 with a stable code and no internals. */
export function tokenError (err: unknown): GatecastError {
  if (isGatecastError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  const mapped = typeof code === 'string' ? JWT_ERRORS[code] : undefined
  return new GatecastError(401, mapped?.[0] ?? 'token_invalid', mapped?.[1] ?? 'malformed token')
}

/** Signs an access token with the configured algorithm, issuer and audience; used by login, refresh and the CLI. */
export function signAccessToken (jwt: JWT, claims: IssueClaims, ttlSeconds: number): string {
  const payload: Record<string, unknown> = { sub: claims.sub, name: claims.name ?? claims.sub, jti: randomUUID() }
  if (claims.roles !== undefined && claims.roles.length > 0) payload.roles = claims.roles
  if (claims.channels !== undefined) payload.channels = claims.channels
  return jwt.sign(payload, { expiresIn: ttlSeconds })
}
