// Token keys from configuration: the signing key and its kid, earlier keys
// kept for verification during a rotation, and an identity provider's JWKS.
import { createPublicKey } from 'node:crypto'
import { ConfigError, MIN_PRODUCTION_SECRET_BYTES, type GatecastConfig } from '../config/config.ts'
import { RemoteKeySet, safeUrl, type JwksOptions } from './jwks.ts'
import { checkKeyFits, derivedKeyId, loadPrivateKey, loadPublicKey, sameKey, spkiPem, type Warn } from './key-files.ts'
import { TokenKeys, type Key, type SignOptions, type VerifyOptions } from './token-keys.ts'

// Clocks of token issuers drift; a few seconds is the usual allowance.
const CLOCK_TOLERANCE_MS = 5000

export interface TokenKeysOptions {
  warn?: Warn
  /** for JWKS fetch lines */
  log?: JwksOptions['log']
}

function remoteKeySet (jwksUrl: string, config: GatecastConfig, warn: Warn, log: JwksOptions['log']): RemoteKeySet {
  let url: URL
  try {
    url = new URL(jwksUrl)
  } catch {
    throw new ConfigError(`JWT_JWKS_URL ${jwksUrl} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`JWT_JWKS_URL must be an https:// URL, not ${url.protocol}`)
  if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    warn(`JWT_JWKS_URL ${safeUrl(url)} is plain http: anyone on the path can swap the keys and forge tokens; use https`)
  }
  return new RemoteKeySet(url, {
    timeoutMs: Math.ceil(config.jwtJwksTimeout * 1000),
    cooldownMs: config.jwtJwksCooldown * 1000,
    maxAgeMs: config.jwtJwksMaxAge * 1000,
    log
  })
}

/**
 * Builds the keys from configuration; every mistake is a ConfigError that says
 * how to fix it. `hmacSecret` comes from resolveJwtSecret.
 */
export function createTokenKeys (config: GatecastConfig, hmacSecret: string | undefined, opts: TokenKeysOptions = {}): TokenKeys {
  const alg = config.jwtAlgorithm
  const warn = opts.warn ?? (() => {})
  const hmac = alg.startsWith('HS')
  const verifyOptions: VerifyOptions = {
    algorithms: [alg],
    clockTolerance: CLOCK_TOLERANCE_MS,
    // fast-jwt only compares iss/aud when present; configured means required
    requiredClaims: [...(config.jwtIssuer !== undefined ? ['iss'] : []), ...(config.jwtAudience !== undefined ? ['aud'] : [])],
    ...(config.jwtIssuer !== undefined ? { allowedIss: config.jwtIssuer } : {}),
    ...(config.jwtAudience !== undefined ? { allowedAud: config.jwtAudience } : {})
  }
  const signOptions = (kid: string): SignOptions => ({
    algorithm: alg,
    kid,
    ...(config.jwtIssuer !== undefined ? { iss: config.jwtIssuer } : {}),
    ...(config.jwtAudience !== undefined ? { aud: config.jwtAudience } : {})
  })

  const previous = hmac ? config.jwtPreviousSecrets : config.jwtPreviousPublicKeyFiles
  if (config.jwtPreviousKeyIds.length > previous.length) {
    throw new ConfigError(`JWT_PREVIOUS_KEY_IDS has ${config.jwtPreviousKeyIds.length} items for ${previous.length} previous keys (${hmac ? 'JWT_PREVIOUS_SECRETS' : 'JWT_PREVIOUS_PUBLIC_KEY_FILES'}); give one kid per key, in the same order`)
  }

  // kid → the key's identity (to catch one kid naming two keys) and the key
  const byKid = new Map<string, Key>()
  const owner = new Map<string, string>()
  const add = (kid: string, identity: string, key: Key, what: string): void => {
    const had = owner.get(kid)
    if (had !== undefined && had !== identity) throw new ConfigError(`key id ${kid} (${what}) already names another key; give each key its own kid`)
    if (had === undefined) {
      owner.set(kid, identity)
      byKid.set(kid, key)
    }
  }
  // the signing key, under JWT_KEY_ID (default: its derived id) and its derived id; returns its kid
  const addCurrent = (identity: string, key: Key, what: string): string => {
    const kid = config.jwtKeyId ?? identity
    add(kid, identity, key, 'JWT_KEY_ID')
    add(identity, identity, key, what)
    return kid
  }
  // earlier key i, under its derived id and under JWT_PREVIOUS_KEY_IDS item i when given
  const addPrevious = (i: number, identity: string, key: Key, what: string): void => {
    const given = config.jwtPreviousKeyIds[i]
    if (given !== undefined && given !== '') add(given, identity, key, `JWT_PREVIOUS_KEY_IDS item ${i + 1}`)
    add(identity, identity, key, what)
  }

  let privateKey: Key | undefined
  let sign: SignOptions | undefined
  let current: Key | undefined

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
    current = hmacSecret
    privateKey = hmacSecret
    sign = signOptions(addCurrent(derivedKeyId(hmacSecret), current, 'JWT_SECRET'))
    config.jwtPreviousSecrets.forEach((secret, i) => {
      addPrevious(i, derivedKeyId(secret), secret, `JWT_PREVIOUS_SECRETS item ${i + 1}`)
    })
  } else {
    if (config.jwtPreviousSecrets.length > 0) throw new ConfigError(`JWT_PREVIOUS_SECRETS needs an HS algorithm; with ${alg} list earlier public keys in JWT_PREVIOUS_PUBLIC_KEY_FILES`)
    const privateKeyObject = config.jwtPrivateKeyFile !== undefined ? loadPrivateKey(config.jwtPrivateKeyFile) : undefined
    let publicKey = config.jwtPublicKeyFile !== undefined ? loadPublicKey(config.jwtPublicKeyFile, 'JWT_PUBLIC_KEY_FILE') : undefined
    if (privateKeyObject !== undefined) {
      const derived = createPublicKey(privateKeyObject)
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
      current = spkiPem(publicKey)
      const keyId = addCurrent(derivedKeyId(publicKey), current, 'JWT_PUBLIC_KEY_FILE')
      if (privateKeyObject !== undefined) {
        privateKey = privateKeyObject.export({ type: 'pkcs8', format: 'pem' }).toString()
        sign = signOptions(keyId)
      }
    } else if (config.jwtKeyId !== undefined) {
      throw new ConfigError('JWT_KEY_ID names the signing key, but there is none (JWT_PUBLIC_KEY_FILE / JWT_PRIVATE_KEY_FILE)')
    }
    config.jwtPreviousPublicKeyFiles.forEach((file, i) => {
      const what = `JWT_PREVIOUS_PUBLIC_KEY_FILES item ${i + 1}`
      const key = loadPublicKey(file, what)
      checkKeyFits(key, alg, what, config.production, warn)
      addPrevious(i, derivedKeyId(key), spkiPem(key), what)
    })
  }

  const remote = config.jwtJwksUrl !== undefined ? remoteKeySet(config.jwtJwksUrl, config, warn, opts.log) : undefined

  return new TokenKeys({ algorithm: alg, privateKey, signOptions: sign, byKid, current, remote, verifyOptions })
}
