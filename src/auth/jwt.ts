// How tokens are signed and verified, as AuthService and the CLI take them.
// In the app, plugins/jwt.ts builds both from @fastify/jwt: its `app.jwt.sign`,
// and its verifier as request.jwtVerify runs it. Without a Fastify instance (the
// CLI's `token` command, an AuthService built outside the app) jwtFromKeys
// builds the same from the same options: booting Fastify only to sign one
// token would load the whole framework for one fast-jwt call.
import { createSigner, createVerifier } from 'fast-jwt'
import type { Key, TokenKeys, VerifyOptions } from './token-keys.ts'

/** Signs a payload that already carries `iat` and `exp`. */
export type Sign = (payload: Record<string, unknown>) => string
/** The verified payload, or a promise of it; throws (or rejects) with fast-jwt's or Gatecast's error. */
export type Verify = (token: string) => unknown

export interface Jwt {
  /** undefined on a verify-only server */
  sign?: Sign
  verify: Verify
}

// An issuer's tokens share a handful of header segments ({alg, typ, kid}), so decoded
// headers are kept; the bound caps what a stream of made-up headers can hold.
const decodedHeaders = new Map<string, unknown>()
const MAX_HEADERS = 64

/** The JOSE header alone, to pick the key; the verifier decodes the whole token after. */
function headerOf (token: string): unknown {
  const dot = token.indexOf('.')
  const segment = dot > 0 ? token.slice(0, dot) : ''
  const known = decodedHeaders.get(segment)
  if (known !== undefined) return known
  let header: unknown = null
  try {
    header = segment === '' ? null : JSON.parse(Buffer.from(segment, 'base64url').toString())
  } catch {}
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return null
  if (decodedHeaders.size >= MAX_HEADERS) decodedHeaders.clear()
  decodedHeaders.set(segment, Object.freeze(header))
  return header
}

// Local keys are a few; JWKS keys change only when the identity provider rotates.
const MAX_VERIFIERS = 64

/**
 * A verifier that picks the key with keys.keyFor (the kid and alg of the
 * header) and verifies with one fast-jwt verifier per key, built from
 * `options`: what request.jwtVerify does inside @fastify/jwt once its key
 * function answered (its per-key verifier cache). app.jwt.verify runs the same
 * key function, but through fast-jwt's asynchronous key path, which imports
 * the key again for every token (createPublicKey on a PEM: 80–110 µs for RSA,
 * EC or Ed25519 keys on the 2-core bench machine, 3–5× the verification itself,
 * 2 µs for an HMAC secret); every handshake would pay that.
 */
export function keyedVerifier (keys: TokenKeys, options: Readonly<VerifyOptions> = keys.verifyOptions): Verify {
  const verifiers = new Map<Key, (token: string) => unknown>()
  const verifyWith = (key: Key, token: string): unknown => {
    let verify = verifiers.get(key)
    if (verify === undefined) {
      if (verifiers.size >= MAX_VERIFIERS) verifiers.clear()
      verify = createVerifier({ ...options, key })
      verifiers.set(key, verify)
    }
    return verify(token)
  }
  return token => {
    const key = keys.keyFor(headerOf(token))
    return typeof key === 'string' ? verifyWith(key, token) : key.then(k => verifyWith(k, token))
  }
}

/** The signer @fastify/jwt makes of these keys' options, and the verifier of keyedVerifier, made without it. */
export function jwtFromKeys (keys: TokenKeys): Jwt {
  return {
    sign: keys.canSign ? createSigner({ ...keys.signOptions, key: keys.privateKey }) : undefined,
    verify: keyedVerifier(keys)
  }
}
