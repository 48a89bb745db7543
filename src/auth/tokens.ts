// Access tokens: signing and verification keys from config (pinned algorithm,
// kid-based rotation, an identity provider's JWKS), where a token is read from
// on an upgrade, and how verified claims become an identity.
import { createHash, createHmac, createPrivateKey, createPublicKey, randomUUID, type KeyObject, type webcrypto } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSigner, createVerifier } from 'fast-jwt'
import { ConfigError, MIN_PRODUCTION_SECRET_BYTES, type GatecastConfig, type JwtAlgorithm } from '../config/config.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { publicPem, RemoteKeySet, safeUrl, unknownKid, type JwksOptions } from './jwks.ts'

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
const MIN_RSA_BITS = 2048

type Verify = (token: string) => unknown
type Sign = (payload: Record<string, unknown>) => string
type Warn = (msg: string) => void

// An issuer's tokens share a handful of header segments ({alg, typ, kid}), so decoded
// headers are kept; the bound caps what a stream of made-up headers can hold.
const decodedHeaders = new Map<string, Readonly<Record<string, unknown>>>()
const MAX_HEADERS = 64

/** The JOSE header alone: the algorithm and key are settled before the payload is decoded (by the verifier). */
function headerOf (token: string): Readonly<Record<string, unknown>> {
  const dot = token.indexOf('.')
  const segment = dot > 0 ? token.slice(0, dot) : ''
  const known = decodedHeaders.get(segment)
  if (known !== undefined) return known
  const header: unknown = segment === '' ? null : JSON.parse(Buffer.from(segment, 'base64url').toString())
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new GatecastError(401, 'token_invalid', 'malformed token')
  if (decodedHeaders.size >= MAX_HEADERS) decodedHeaders.clear()
  decodedHeaders.set(segment, Object.freeze(header as Record<string, unknown>))
  return header as Record<string, unknown>
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key. */
function jwkThumbprint (key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  // the required members only, in lexicographic order
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

/**
 * The `kid` a key gets when none is configured: the first 16 characters of its
 * RFC 7638 thumbprint (public keys) or of an HMAC-SHA256 of a fixed label keyed
 * with the secret (so the secret's plain hash is never published).
 */
function derivedKeyId (key: string | KeyObject): string {
  if (typeof key === 'string') return createHmac('sha256', key).update('gatecast key id').digest('base64url').slice(0, 16)
  return jwkThumbprint(key).slice(0, 16)
}

function readPem (file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** A public key from a PEM file holding a public key, a certificate or a private key. */
function loadPublicKey (file: string, what: string): KeyObject {
  const pem = readPem(file, what)
  try {
    return createPublicKey(pem)
  } catch {
    throw new ConfigError(`${what} ${file} is not a PEM public key, certificate or private key`)
  }
}

function loadPrivateKey (file: string): KeyObject {
  const pem = readPem(file, 'JWT_PRIVATE_KEY_FILE')
  try {
    return createPrivateKey(pem)
  } catch {
    throw new ConfigError(`JWT_PRIVATE_KEY_FILE ${file} is not an unencrypted PEM private key`)
  }
}

const KEY_TYPES: Record<string, { types: string[], label: string, curve?: string }> = {
  RS256: { types: ['rsa'], label: 'an RSA key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)' },
  ES256: { types: ['ec'], curve: 'prime256v1', label: 'an EC P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)' },
  EdDSA: { types: ['ed25519', 'ed448'], label: 'an Ed25519 key (openssl genpkey -algorithm ed25519)' }
}

function checkKeyFits (key: KeyObject, alg: JwtAlgorithm, what: string, production: boolean, warn: Warn): void {
  const want = KEY_TYPES[alg]
  const type = key.asymmetricKeyType ?? 'unknown'
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (!want.types.includes(type) || (want.curve !== undefined && curve !== want.curve)) {
    throw new ConfigError(`${what} holds a${/^[aeiou]/.test(type) ? 'n' : ''} ${type}${curve !== undefined ? ` (${curve})` : ''} key; JWT_ALGORITHM ${alg} needs ${want.label}`)
  }
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (type === 'rsa' && bits !== undefined && bits < MIN_RSA_BITS) {
    const msg = `${what} is a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are needed`
    if (production) throw new ConfigError(`${msg} (generate one: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)`)
    warn(`${msg} in production`)
  }
}

const sameKey = (a: KeyObject, b: KeyObject): boolean =>
  a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }))

const spkiPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()

export const signingUnavailable = (): GatecastError =>
  new GatecastError(503, 'signing_unavailable', 'this server only verifies tokens (no JWT_PRIVATE_KEY_FILE): get one from the service that issues them')

/**
 * Signing and verification keys: the current key (signs, with its `kid`),
 * earlier keys (verify only, by `kid`) and an identity provider's JWKS. The
 * algorithm is pinned: a token whose header names any other `alg` is refused
 * before a key is looked up.
 */
export class TokenKeys {
  readonly algorithm: JwtAlgorithm
  /** the JWKS of JWT_JWKS_URL, when configured */
  readonly remote: RemoteKeySet | undefined
  readonly #sign: Sign | undefined
  readonly #byKid: Map<string, Verify>
  readonly #current: Verify | undefined
  readonly #verifyOptions: Parameters<typeof createVerifier>[0]
  readonly #remoteVerifiers = new WeakMap<webcrypto.CryptoKey, Verify>()

  constructor (o: { algorithm: JwtAlgorithm, sign?: Sign, byKid: Map<string, Verify>, current?: Verify, remote?: RemoteKeySet, verifyOptions: Parameters<typeof createVerifier>[0] }) {
    this.algorithm = o.algorithm
    this.#sign = o.sign
    this.#byKid = o.byKid
    this.#current = o.current
    this.remote = o.remote
    this.#verifyOptions = o.verifyOptions
  }

  get canSign (): boolean {
    return this.#sign !== undefined
  }

  /** A token for `payload` valid `ttlSeconds`, with `iat`, `exp`, `kid` and the configured `iss`/`aud`. */
  sign (payload: Record<string, unknown>, ttlSeconds: number): string {
    if (this.#sign === undefined) throw signingUnavailable()
    const iat = Math.floor(Date.now() / 1000)
    return this.#sign({ ...payload, iat, exp: iat + ttlSeconds })
  }

  /** The verified payload; throws on any failure (map it with tokenError). */
  async verify (token: string): Promise<unknown> {
    const header = headerOf(token)
    if (header.alg !== this.algorithm) throw new GatecastError(401, 'token_invalid', 'token algorithm not accepted')
    const kid = header.kid
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw new GatecastError(401, 'token_invalid', 'token kid is not a string')
    const local = kid === undefined ? this.#current : this.#byKid.get(kid)
    if (local !== undefined) return local(token)
    if (this.remote === undefined) {
      throw kid === undefined ? new GatecastError(401, 'token_invalid', 'token names no key (kid)') : unknownKid()
    }
    const key = await this.remote.key(kid === undefined ? { alg: this.algorithm } : { alg: this.algorithm, kid })
    let verify = this.#remoteVerifiers.get(key)
    if (verify === undefined) {
      verify = createVerifier({ ...this.#verifyOptions, key: publicPem(key) })
      this.#remoteVerifiers.set(key, verify)
    }
    return verify(token)
  }

  /** Warms the JWKS cache (never throws). */
  async prefetch (): Promise<void> {
    await this.remote?.prefetch()
  }

  close (): void {
    this.remote?.close()
  }
}

export interface TokenKeysOptions {
  warn?: Warn
  /** for JWKS fetch lines */
  log?: JwksOptions['log']
}

/**
 * Builds the keys from configuration; every mistake is a ConfigError that says
 * how to fix it. `hmacSecret` comes from resolveJwtSecret.
 */
export function createTokenKeys (config: GatecastConfig, hmacSecret: string | undefined, opts: TokenKeysOptions = {}): TokenKeys {
  const alg = config.jwtAlgorithm
  const warn = opts.warn ?? (() => {})
  const hmac = alg.startsWith('HS')
  const verifyOptions = {
    algorithms: [alg],
    clockTolerance: CLOCK_TOLERANCE_MS,
    // fast-jwt only compares iss/aud when present; configured means required
    requiredClaims: [...(config.jwtIssuer !== undefined ? ['iss'] : []), ...(config.jwtAudience !== undefined ? ['aud'] : [])],
    ...(config.jwtIssuer !== undefined ? { allowedIss: config.jwtIssuer } : {}),
    ...(config.jwtAudience !== undefined ? { allowedAud: config.jwtAudience } : {})
  } satisfies Parameters<typeof createVerifier>[0]
  const verifier = (key: string): Verify => createVerifier({ ...verifyOptions, key })
  const signer = (key: string, kid: string): Sign => createSigner({
    key,
    algorithm: alg,
    kid,
    ...(config.jwtIssuer !== undefined ? { iss: config.jwtIssuer } : {}),
    ...(config.jwtAudience !== undefined ? { aud: config.jwtAudience } : {})
  })

  const previous = hmac ? config.jwtPreviousSecrets : config.jwtPreviousPublicKeyFiles
  if (config.jwtPreviousKeyIds.length > previous.length) {
    throw new ConfigError(`JWT_PREVIOUS_KEY_IDS has ${config.jwtPreviousKeyIds.length} items for ${previous.length} previous keys (${hmac ? 'JWT_PREVIOUS_SECRETS' : 'JWT_PREVIOUS_PUBLIC_KEY_FILES'}); give one kid per key, in the same order`)
  }

  // kid → the key's identity (to catch one kid naming two keys) and its verifier
  const byKid = new Map<string, Verify>()
  const owner = new Map<string, string>()
  const add = (kid: string, identity: string, verify: Verify, what: string): void => {
    const had = owner.get(kid)
    if (had !== undefined && had !== identity) throw new ConfigError(`key id ${kid} (${what}) already names another key; give each key its own kid`)
    if (had === undefined) {
      owner.set(kid, identity)
      byKid.set(kid, verify)
    }
  }
  // the signing key, under JWT_KEY_ID (default: its derived id) and its derived id; returns its kid
  const addCurrent = (identity: string, verify: Verify, what: string): string => {
    const kid = config.jwtKeyId ?? identity
    add(kid, identity, verify, 'JWT_KEY_ID')
    add(identity, identity, verify, what)
    return kid
  }
  // earlier key i, under its derived id and under JWT_PREVIOUS_KEY_IDS item i when given
  const addPrevious = (i: number, identity: string, verify: Verify, what: string): void => {
    const given = config.jwtPreviousKeyIds[i]
    if (given !== undefined && given !== '') add(given, identity, verify, `JWT_PREVIOUS_KEY_IDS item ${i + 1}`)
    add(identity, identity, verify, what)
  }

  let sign: Sign | undefined
  let current: Verify | undefined

  if (hmac) {
    const stray = [['JWT_PUBLIC_KEY_FILE', config.jwtPublicKeyFile], ['JWT_PRIVATE_KEY_FILE', config.jwtPrivateKeyFile], ['JWT_JWKS_URL', config.jwtJwksUrl]]
      .filter(([, v]) => v !== undefined).map(([k]) => k)
    if (config.jwtPreviousPublicKeyFiles.length > 0) stray.push('JWT_PREVIOUS_PUBLIC_KEY_FILES')
    if (stray.length > 0) throw new ConfigError(`${stray.join(', ')} need an asymmetric JWT_ALGORITHM (RS256, ES256 or EdDSA), not ${alg}`)
    if (hmacSecret === undefined) throw new ConfigError(`JWT_SECRET is required for ${alg}`)
    config.jwtPreviousSecrets.forEach((secret, i) => {
      const bytes = Buffer.byteLength(secret, 'utf8')
      if (bytes >= MIN_PRODUCTION_SECRET_BYTES) return
      const msg = `JWT_PREVIOUS_SECRETS item ${i + 1} is ${bytes} bytes; production needs at least ${MIN_PRODUCTION_SECRET_BYTES}`
      if (config.production) throw new ConfigError(`${msg} (drop it once the tokens it signed have expired)`)
      warn(msg)
    })
    current = verifier(hmacSecret)
    sign = signer(hmacSecret, addCurrent(derivedKeyId(hmacSecret), current, 'JWT_SECRET'))
    config.jwtPreviousSecrets.forEach((secret, i) => {
      addPrevious(i, derivedKeyId(secret), verifier(secret), `JWT_PREVIOUS_SECRETS item ${i + 1}`)
    })
  } else {
    if (config.jwtPreviousSecrets.length > 0) throw new ConfigError(`JWT_PREVIOUS_SECRETS needs an HS algorithm; with ${alg} list earlier public keys in JWT_PREVIOUS_PUBLIC_KEY_FILES`)
    const privateKey = config.jwtPrivateKeyFile !== undefined ? loadPrivateKey(config.jwtPrivateKeyFile) : undefined
    let publicKey = config.jwtPublicKeyFile !== undefined ? loadPublicKey(config.jwtPublicKeyFile, 'JWT_PUBLIC_KEY_FILE') : undefined
    if (privateKey !== undefined) {
      const derived = createPublicKey(privateKey)
      if (publicKey !== undefined && !sameKey(publicKey, derived)) {
        throw new ConfigError(`JWT_PRIVATE_KEY_FILE ${config.jwtPrivateKeyFile ?? ''} is not the private half of JWT_PUBLIC_KEY_FILE ${config.jwtPublicKeyFile ?? ''}`)
      }
      publicKey ??= derived
    }
    if (publicKey === undefined && config.jwtJwksUrl === undefined) {
      throw new ConfigError(`JWT_ALGORITHM ${alg} needs JWT_PUBLIC_KEY_FILE (PEM; plus JWT_PRIVATE_KEY_FILE to issue tokens) or JWT_JWKS_URL`)
    }
    if (publicKey !== undefined) {
      checkKeyFits(publicKey, alg, 'JWT_PUBLIC_KEY_FILE', config.production, warn)
      current = verifier(spkiPem(publicKey))
      const keyId = addCurrent(derivedKeyId(publicKey), current, 'JWT_PUBLIC_KEY_FILE')
      if (privateKey !== undefined) sign = signer(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), keyId)
    } else if (config.jwtKeyId !== undefined) {
      throw new ConfigError('JWT_KEY_ID names the signing key, but there is none (JWT_PUBLIC_KEY_FILE / JWT_PRIVATE_KEY_FILE)')
    }
    config.jwtPreviousPublicKeyFiles.forEach((file, i) => {
      const what = `JWT_PREVIOUS_PUBLIC_KEY_FILES item ${i + 1}`
      const key = loadPublicKey(file, what)
      checkKeyFits(key, alg, what, config.production, warn)
      addPrevious(i, derivedKeyId(key), verifier(spkiPem(key)), what)
    })
  }

  let remote: RemoteKeySet | undefined
  if (config.jwtJwksUrl !== undefined) {
    let url: URL
    try {
      url = new URL(config.jwtJwksUrl)
    } catch {
      throw new ConfigError(`JWT_JWKS_URL ${config.jwtJwksUrl} is not a URL`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`JWT_JWKS_URL must be an https:// URL, not ${url.protocol}`)
    if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
      warn(`JWT_JWKS_URL ${safeUrl(url)} is plain http: anyone on the path can swap the keys and forge tokens; use https`)
    }
    remote = new RemoteKeySet(url, {
      timeoutMs: Math.ceil(config.jwtJwksTimeout * 1000),
      cooldownMs: config.jwtJwksCooldown * 1000,
      maxAgeMs: config.jwtJwksMaxAge * 1000,
      log: opts.log
    })
  }

  return new TokenKeys({ algorithm: alg, sign, byKid, current, remote, verifyOptions })
}

const BEARER_RE = /^Bearer\s+(\S+)$/i

/** one value, repeated values (an array), or none */
const allValues = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.map(String) : []

/** The parts of a request a token can come from, so routes need not keep the request. */
export interface TokenSources {
  /** every value of the header (`req.raw.headersDistinct.authorization`) */
  authorization?: string | readonly string[]
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
  // every Authorization header counts (Node keeps only the first in req.headers): two that
  // differ are a conflict, not a choice, since a proxy may have read the other one
  for (const h of allValues(src.authorization)) {
    const m = BEARER_RE.exec(h.trim())
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
  // a repeated query parameter arrives as an array: every copy counts, so two that differ conflict
  for (const t of allValues(src.query.token)) found.push(t)
  for (const a of allValues(src.query.Authorization)) {
    const m = BEARER_RE.exec(a.trim())
    found.push(m === null ? a.trim() : m[1])
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
  FAST_JWT_MISSING_REQUIRED_CLAIM: ['token_invalid', 'token misses a required claim'],
  FAST_JWT_INVALID_CRIT_HEADER: ['token_invalid', 'token has an unsupported critical header']
}

/** Any verification failure becomes a 401 with a stable code and no internals. */
export function tokenError (err: unknown): GatecastError {
  if (isGatecastError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  const mapped = typeof code === 'string' ? JWT_ERRORS[code] : undefined
  return new GatecastError(401, mapped?.[0] ?? 'token_invalid', mapped?.[1] ?? 'malformed token')
}

/** Signs an access token with the current key, its kid, issuer and audience; used by login, refresh and the CLI. */
export function signAccessToken (keys: TokenKeys, claims: IssueClaims, ttlSeconds: number): string {
  const payload: Record<string, unknown> = { sub: claims.sub, name: claims.name ?? claims.sub, jti: randomUUID() }
  if (claims.roles !== undefined && claims.roles.length > 0) payload.roles = claims.roles
  if (claims.channels !== undefined) payload.channels = claims.channels
  return keys.sign(payload, ttlSeconds)
}
