// Login, refresh-token rotation with reuse detection, logout and access-token
// verification. State that every node must see lives in the engine.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { GatecastConfig } from '../config/config.ts'
import type { Engine } from '../engine/types.ts'
import { GatecastError } from '../protocol/errors.ts'
import { identityFromClaims, jtiOf, signAccessToken, tokenError, type Identity } from './claims.ts'
import { jwtFromKeys, type Jwt, type Sign } from './jwt.ts'
import { signingUnavailable, type TokenKeys } from './token-keys.ts'
import type { LookupUser, VerifiedUser, VerifyCredentials } from './users.ts'

export interface TokenPair {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_token: string
  refresh_expires_in: number
}

const LOGIN_FAILURE_WINDOW = 15 * 60

const refreshKey = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class AuthService {
  readonly #sign: Sign | undefined
  readonly #verify: Jwt['verify']
  readonly #engine: Engine
  readonly #config: GatecastConfig
  readonly #verifyCredentials: VerifyCredentials
  readonly #lookupUser: LookupUser | undefined

  /**
   * `jwt` signs and verifies: @fastify/jwt's in the app (plugins/jwt.ts); by
   * default the same fast-jwt signer and verifier built from `keys` without it.
   */
  constructor (keys: TokenKeys, engine: Engine, config: GatecastConfig, users: { verifyCredentials: VerifyCredentials, lookupUser?: LookupUser }, jwt: Jwt = jwtFromKeys(keys)) {
    this.#sign = jwt.sign
    this.#verify = jwt.verify
    this.#engine = engine
    this.#config = config
    this.#verifyCredentials = users.verifyCredentials
    this.#lookupUser = users.lookupUser
  }

  get canSign (): boolean {
    return this.#sign !== undefined
  }

  /** Verifies signature, algorithm, key (kid), time claims, issuer/audience and revocation. */
  async verifyAccess (token: string): Promise<Identity> {
    let identity: Identity
    try {
      identity = identityFromClaims(await this.#verify(token), this.#config.jwtUserClaim)
    } catch (err) {
      throw tokenError(err)
    }
    if (identity.jti !== undefined && await this.#engine.store.isTokenRevoked(identity.jti)) {
      throw new GatecastError(401, 'token_revoked', 'token revoked')
    }
    return identity
  }

  /** False for a verified payload whose `jti` was revoked (logout), as @fastify/jwt's `trusted` hook asks. */
  async isTrusted (payload: unknown): Promise<boolean> {
    const jti = payload !== null && typeof payload === 'object' ? jtiOf((payload as { jti?: unknown }).jti) : undefined
    return jti === undefined || !await this.#engine.store.isTokenRevoked(jti)
  }

  async #issue (user: VerifiedUser, family: string): Promise<TokenPair> {
    const sign = this.#sign
    if (sign === undefined) throw signingUnavailable()
    const refresh = randomBytes(32).toString('base64url')
    await this.#engine.store.saveRefreshToken(refreshKey(refresh), {
      userId: user.id, name: user.name, roles: user.roles, channels: user.channels, family
    }, this.#config.refreshTokenTtl)
    return {
      access_token: signAccessToken(sign, { sub: user.id, name: user.name, roles: user.roles, channels: user.channels }, this.#config.accessTokenTtl),
      token_type: 'Bearer',
      expires_in: this.#config.accessTokenTtl,
      refresh_token: refresh,
      refresh_expires_in: this.#config.refreshTokenTtl
    }
  }

  async login (username: string, password: string): Promise<TokenPair> {
    // before the password is looked at: a verify-only server has nothing to hand out
    if (!this.canSign) throw signingUnavailable()
    const failKey = `login-fail:${username}`
    // Counted (atomically) before the password is checked, not after: the check is slow,
    // and attempts sent together would all pass a count that none of them has raised yet.
    // A failure keeps its count; refused attempts count too, which changes nothing as
    // the window is fixed. So at most LOGIN_FAILURES passwords per window are ever checked.
    if (await this.#engine.store.hit(failKey, LOGIN_FAILURE_WINDOW) > this.#config.loginFailures) {
      throw GatecastError.rateLimited('too many failed logins for this user; try again later')
    }
    const user = await this.#verifyCredentials(username, password)
    if (user === null) throw new GatecastError(401, 'invalid_credentials', 'invalid username or password')
    await this.#engine.store.clearHits(failKey)
    return this.#issue(user, randomUUID())
  }

  async refresh (refreshToken: string): Promise<TokenPair> {
    // before the token is used up
    if (!this.canSign) throw signingUnavailable()
    const used = await this.#engine.store.useRefreshToken(refreshKey(refreshToken))
    if (used === null) throw GatecastError.invalidRefreshToken('invalid or expired refresh token')
    const { record, reused } = used
    if (reused) {
      // a rotated token came back: someone holds a copy, so the whole family goes
      await this.#engine.store.revokeFamily(record.family, this.#config.refreshTokenTtl)
      throw new GatecastError(401, 'refresh_token_reused', 'refresh token already used; all sessions of this login are revoked')
    }
    if (await this.#engine.store.isFamilyRevoked(record.family)) {
      throw GatecastError.invalidRefreshToken('refresh token revoked')
    }
    let user: VerifiedUser | null = { id: record.userId, name: record.name, roles: record.roles, channels: record.channels }
    if (this.#lookupUser !== undefined) {
      // roles changed or user removed since login: the new tokens say so
      user = await this.#lookupUser(record.userId)
      if (user === null) {
        await this.#engine.store.revokeFamily(record.family, this.#config.refreshTokenTtl)
        throw GatecastError.invalidRefreshToken('user no longer exists')
      }
    }
    return this.#issue(user, record.family)
  }

  async logout (identity: Identity, refreshToken?: string): Promise<void> {
    if (identity.jti !== undefined) {
      const ttl = identity.exp !== undefined ? Math.max(1, identity.exp - Math.floor(Date.now() / 1000) + 60) : this.#config.accessTokenTtl
      await this.#engine.store.revokeToken(identity.jti, ttl)
      await this.#engine.broker.control({ kind: 'revoke', userId: identity.userId, jti: identity.jti })
    }
    if (refreshToken !== undefined) {
      // only peeked: someone else's token must stay untouched
      const record = await this.#engine.store.peekRefreshToken(refreshKey(refreshToken))
      if (record !== null && record.userId === identity.userId) {
        await this.#engine.store.revokeFamily(record.family, this.#config.refreshTokenTtl)
      }
    }
  }
}
