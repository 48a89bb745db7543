// Key material from PEM files: loading, whether a key suits the pinned
// algorithm, and the `kid` a key gets when none is configured.
import { createHash, createHmac, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError, type JwtAlgorithm } from '../config/config.ts'

const MIN_RSA_BITS = 2048

export type Warn = (msg: string) => void

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
export function derivedKeyId (key: string | KeyObject): string {
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
export function loadPublicKey (file: string, what: string): KeyObject {
  const pem = readPem(file, what)
  try {
    return createPublicKey(pem)
  } catch {
    throw new ConfigError(`${what} ${file} is not a PEM public key, certificate or private key`)
  }
}

export function loadPrivateKey (file: string): KeyObject {
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

export function checkKeyFits (key: KeyObject, alg: JwtAlgorithm, what: string, production: boolean, warn: Warn): void {
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

export const sameKey = (a: KeyObject, b: KeyObject): boolean =>
  a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }))

export const spkiPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()
