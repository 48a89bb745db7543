// The keys tokens are signed and verified with, once built from configuration
// (keys.ts), as @fastify/jwt takes them (plugins/jwt.ts): the private key and
// the signing options, the verification options, and a key function that picks
// the verification key by the token's JOSE header. src/ may not import
// Fastify, so all of it is plain data and functions here.
import type { webcrypto } from 'node:crypto'
import type { JwtAlgorithm } from '../config/config.ts'
import { GatecastError } from '../protocol/errors.ts'
import { publicPem, unknownKid, type RemoteKeySet } from './jwks.ts'

/** fast-jwt's signer options, as @fastify/jwt's `sign` takes them (the key apart). */
export interface SignOptions {
  algorithm: JwtAlgorithm
  kid: string
  iss?: string
  aud?: string
}

/** fast-jwt's verifier options, as @fastify/jwt's `verify` takes them (the key apart). */
export interface VerifyOptions {
  algorithms: JwtAlgorithm[]
  /** ms */
  clockTolerance: number
  requiredClaims: string[]
  allowedIss?: string
  allowedAud?: string
}

/** A verification key as fast-jwt takes it: an HMAC secret or an SPKI PEM. */
export type Key = string

/** The callback shape of a fast-jwt key function (what `secret.public` ends up as). */
export type KeyCallback = (err: Error | null, key?: Key) => void

export const signingUnavailable = (): GatecastError =>
  new GatecastError(503, 'signing_unavailable', 'this server only verifies tokens (no JWT_PRIVATE_KEY_FILE): get one from the service that issues them')

/**
 * Signing and verification keys: the current key (signs, with its `kid`),
 * earlier keys (verify only, by `kid`) and an identity provider's JWKS. The
 * algorithm is pinned: a token whose header names any other `alg` is refused
 * before a key is looked up, so such a token never makes the JWKS be fetched.
 */
export class TokenKeys {
  readonly algorithm: JwtAlgorithm
  /** the JWKS of JWT_JWKS_URL, when configured */
  readonly remote: RemoteKeySet | undefined
  /** the key tokens are signed with; undefined on a verify-only server */
  readonly privateKey: Key | undefined
  readonly signOptions: Readonly<SignOptions> | undefined
  readonly verifyOptions: Readonly<VerifyOptions>
  readonly #byKid: Map<string, Key>
  readonly #current: Key | undefined
  readonly #remotePems = new WeakMap<webcrypto.CryptoKey, Key>()

  constructor (o: { algorithm: JwtAlgorithm, privateKey?: Key, signOptions?: SignOptions, byKid: Map<string, Key>, current?: Key, remote?: RemoteKeySet, verifyOptions: VerifyOptions }) {
    this.algorithm = o.algorithm
    this.privateKey = o.privateKey
    this.signOptions = o.privateKey === undefined ? undefined : o.signOptions
    this.verifyOptions = o.verifyOptions
    this.#byKid = o.byKid
    this.#current = o.current
    this.remote = o.remote
  }

  get canSign (): boolean {
    return this.privateKey !== undefined && this.signOptions !== undefined
  }

  /**
   * The key a token's JOSE header names: a string at once for the local keys,
   * as these are on every handshake's path, a promise for a JWKS key. Throws
   * (or rejects with) a 401 GatecastError.
   */
  keyFor (header: unknown): Key | Promise<Key> {
    if (header === null || typeof header !== 'object') throw GatecastError.tokenInvalid('malformed token')
    const { alg, kid } = header as { alg?: unknown, kid?: unknown }
    if (alg !== this.algorithm) throw GatecastError.tokenInvalid('token algorithm not accepted')
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw GatecastError.tokenInvalid('token kid is not a string')
    const local = kid === undefined ? this.#current : this.#byKid.get(kid)
    if (local !== undefined) return local
    if (this.remote === undefined) throw kid === undefined ? GatecastError.tokenInvalid('token names no key (kid)') : unknownKid()
    return this.#remoteKey(this.remote, kid)
  }

  /**
   * keyFor for a decoded token (`{ header }`) in the callback form of a
   * fast-jwt key function, which is what @fastify/jwt's `secret.public`
   * becomes. A local key is passed back in the same tick. Never throws:
   * @fastify/jwt calls it inside its own callback chain.
   */
  readonly fetchKey = (decoded: unknown, cb: KeyCallback): void => {
    let key: Key | Promise<Key>
    try {
      key = this.keyFor((decoded as { header?: unknown } | null)?.header)
    } catch (err) {
      cb(err as Error)
      return
    }
    if (typeof key === 'string') cb(null, key)
    else key.then(k => cb(null, k), (err: Error) => cb(err))
  }

  async #remoteKey (remote: RemoteKeySet, kid: string | undefined): Promise<Key> {
    const key = await remote.key(kid === undefined ? { alg: this.algorithm } : { alg: this.algorithm, kid })
    let pem = this.#remotePems.get(key)
    if (pem === undefined) {
      pem = publicPem(key)
      this.#remotePems.set(key, pem)
    }
    return pem
  }

  /** Warms the JWKS cache (never throws). */
  async prefetch (): Promise<void> {
    await this.remote?.prefetch()
  }

  close (): void {
    this.remote?.close()
  }
}
