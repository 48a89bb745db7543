// The keys tokens are signed and verified with, once built from configuration
// (keys.ts): the algorithm is pinned and the key chosen by the JOSE header
// before the verifier decodes the payload.
import type { webcrypto } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import type { JwtAlgorithm } from '../config/config.ts'
import { GatecastError } from '../protocol/errors.ts'
import { publicPem, unknownKid, type RemoteKeySet } from './jwks.ts'

export type Verify = (token: string) => unknown
export type Sign = (payload: Record<string, unknown>) => string
export type VerifyOptions = Parameters<typeof createVerifier>[0]

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
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw GatecastError.tokenInvalid('malformed token')
  if (decodedHeaders.size >= MAX_HEADERS) decodedHeaders.clear()
  decodedHeaders.set(segment, Object.freeze(header as Record<string, unknown>))
  return header as Record<string, unknown>
}

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
  readonly #verifyOptions: VerifyOptions
  readonly #remoteVerifiers = new WeakMap<webcrypto.CryptoKey, Verify>()

  constructor (o: { algorithm: JwtAlgorithm, sign?: Sign, byKid: Map<string, Verify>, current?: Verify, remote?: RemoteKeySet, verifyOptions: VerifyOptions }) {
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
    if (header.alg !== this.algorithm) throw GatecastError.tokenInvalid('token algorithm not accepted')
    const kid = header.kid
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw GatecastError.tokenInvalid('token kid is not a string')
    const local = kid === undefined ? this.#current : this.#byKid.get(kid)
    if (local !== undefined) return local(token)
    if (this.remote === undefined) {
      throw kid === undefined ? GatecastError.tokenInvalid('token names no key (kid)') : unknownKid()
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
