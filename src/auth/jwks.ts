// Keys of an external identity provider (JWT_JWKS_URL). jose selects and
// imports the key (kid, alg, kty, use, key_ops); the fetching policy is ours:
// every fetch is bounded in time and size, at most one runs at a time, and two
// fetches are at least `cooldown` apart whatever the outcome, so tokens with
// made-up `kid`s cannot turn the gateway into a fetch storm against the IdP,
// not even while it is down.
import { KeyObject, type webcrypto } from 'node:crypto'
import { createLocalJWKSet, errors, type LocalJWKSet } from 'jose'
import { GatecastError } from '../protocol/errors.ts'

export interface JwksOptions {
  /** ms a fetch (connect, headers and body) may take */
  timeoutMs: number
  /** ms between two fetch attempts, successful or not */
  cooldownMs: number
  /** ms after which the set is refreshed in the background on use */
  maxAgeMs: number
  log?: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

/** A JWKS is a few KiB; anything much larger is not one. */
const MAX_JWKS_BYTES = 512 * 1024

const jwksUnavailable = (): GatecastError =>
  new GatecastError(401, 'jwks_unavailable', "the identity provider's keys (JWT_JWKS_URL) cannot be fetched right now")

export const unknownKid = (): GatecastError => GatecastError.tokenInvalid('unknown signing key (kid)')

/** The URL without credentials or query, for logs. */
export function safeUrl (url: URL): string {
  return `${url.origin}${url.pathname}`
}

async function readLimited (body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
  if (body === null) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new Error(`response larger than ${limit} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export class RemoteKeySet {
  readonly url: URL
  readonly #opts: JwksOptions
  #set: LocalJWKSet | undefined
  #loadedAt = -Infinity
  #attemptAt = -Infinity
  #pending: Promise<void> | undefined
  readonly #closing = new AbortController()

  constructor (url: URL, opts: JwksOptions) {
    this.url = url
    this.#opts = opts
  }

  /**
   * The key for a token header whose `alg` the caller already checked against
   * the configured algorithm. Throws a 401 GatecastError: `token_invalid`
   * (no such key) or `jwks_unavailable` (the set cannot be fetched).
   */
  async key (header: { alg: string, kid?: string }): Promise<webcrypto.CryptoKey> {
    if (this.#set === undefined) {
      await this.#load()
    } else if (Date.now() - this.#loadedAt >= this.#opts.maxAgeMs && this.#mayFetch()) {
      // stale: keep answering with what we have while a fresh copy comes
      this.#load().catch(() => {})
    }
    const found = await this.#find(header)
    if (found !== null) return found
    // a kid we have not seen: the IdP may have rotated its keys
    if (!this.#mayFetch()) throw unknownKid()
    await this.#load()
    const fresh = await this.#find(header)
    if (fresh === null) throw unknownKid()
    return fresh
  }

  /** Fetches the set now unless a fetch is running or the cooldown is not over; never throws. */
  async prefetch (): Promise<void> {
    if (this.#set !== undefined || !this.#mayFetch()) return
    await this.#load().catch(() => {})
  }

  /** Aborts a running fetch. */
  close (): void {
    this.#closing.abort()
  }

  /** The matching key, or null when the set has none. */
  async #find (header: { alg: string, kid?: string }): Promise<webcrypto.CryptoKey | null> {
    const set = this.#set
    if (set === undefined) throw jwksUnavailable()
    try {
      return await set(header) as unknown as webcrypto.CryptoKey
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) return null
      if (err instanceof errors.JWKSMultipleMatchingKeys) {
        throw GatecastError.tokenInvalid('the token names no key (kid) and the key set has several')
      }
      // a JWK that cannot be imported for this algorithm
      throw GatecastError.tokenInvalid('the signing key of the identity provider is not usable')
    }
  }

  #mayFetch (): boolean {
    return this.#pending !== undefined || Date.now() - this.#attemptAt >= this.#opts.cooldownMs
  }

  /** Joins the running fetch or starts one; throws `jwks_unavailable` when none may run or it failed. */
  async #load (): Promise<void> {
    if (this.#pending === undefined) {
      if (!this.#mayFetch()) throw jwksUnavailable()
      this.#attemptAt = Date.now()
      this.#pending = this.#fetch().finally(() => { this.#pending = undefined })
    }
    try {
      await this.#pending
    } catch {
      throw jwksUnavailable()
    }
  }

  async #fetch (): Promise<void> {
    const where = safeUrl(this.url)
    try {
      const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#opts.timeoutMs)])
      const res = await fetch(this.url, { signal, redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } })
      if (res.status !== 200) {
        await res.body?.cancel()
        throw new Error(`HTTP ${res.status}`)
      }
      const text = await readLimited(res.body, MAX_JWKS_BYTES)
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        throw new Error('response is not JSON')
      }
      // throws unless it is { keys: [objects] }
      let set: LocalJWKSet
      try {
        set = createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0])
      } catch {
        throw new Error('response is not a JSON Web Key Set')
      }
      this.#set = set
      this.#loadedAt = Date.now()
      const kids = set.jwks().keys.map(k => k.kid ?? null)
      this.#opts.log?.info({ url: where, kids }, 'JWKS fetched')
    } catch (err) {
      const e = err as Error
      const cause = (e.cause as { code?: unknown } | undefined)?.code
      const reason = e.name === 'TimeoutError'
        ? `no answer within ${this.#opts.timeoutMs} ms`
        : `${e.message}${typeof cause === 'string' ? ` (${cause})` : ''}`
      this.#opts.log?.warn({ url: where, reason, keptKeys: this.#set !== undefined }, 'JWKS fetch failed')
      throw err
    }
  }
}

/** A CryptoKey from jose as the PEM that fast-jwt takes. */
export function publicPem (key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'spki', format: 'pem' }).toString()
}
