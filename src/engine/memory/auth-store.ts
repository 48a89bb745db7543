// In-process auth state: revocations, refresh tokens and hit counters, each
// with its expiry checked on read and swept now and then.
import type { AuthStore } from '../auth-store.ts'
import type { RefreshRecord } from '../types.ts'

interface Counter { count: number, resetAt: number }

export class MemoryAuthStore implements AuthStore {
  readonly #expiring = new Map<string, number>()
  readonly #refresh = new Map<string, { record: RefreshRecord, used: boolean, expiresAt: number }>()
  // `hits:` and `rl:` keys: the two counter families never share a key, as in Redis
  readonly #hits = new Map<string, Counter>()

  #expire (key: string, ttlSeconds: number): void {
    this.#expiring.set(key, Date.now() + ttlSeconds * 1000)
  }

  #alive (key: string): boolean {
    const at = this.#expiring.get(key)
    return at !== undefined && at > Date.now()
  }

  async revokeToken (jti: string, ttlSeconds: number): Promise<void> {
    this.#expire(`jti:${jti}`, ttlSeconds)
  }

  async isTokenRevoked (jti: string): Promise<boolean> {
    return this.#alive(`jti:${jti}`)
  }

  async saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void> {
    this.#refresh.set(key, { record, used: false, expiresAt: Date.now() + ttlSeconds * 1000 })
  }

  async peekRefreshToken (key: string): Promise<RefreshRecord | null> {
    const r = this.#refresh.get(key)
    return r === undefined || r.expiresAt <= Date.now() ? null : r.record
  }

  async useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null> {
    const r = this.#refresh.get(key)
    if (r === undefined || r.expiresAt <= Date.now()) return null
    const reused = r.used
    r.used = true
    return { record: r.record, reused }
  }

  async revokeFamily (family: string, ttlSeconds: number): Promise<void> {
    this.#expire(`family:${family}`, ttlSeconds)
  }

  async isFamilyRevoked (family: string): Promise<boolean> {
    return this.#alive(`family:${family}`)
  }

  #count (key: string, windowMs: number, now: number): Counter {
    let h = this.#hits.get(key)
    if (h === undefined || h.resetAt <= now) {
      h = { count: 0, resetAt: now + windowMs }
      this.#hits.set(key, h)
    }
    h.count++
    return h
  }

  async hit (key: string, windowSeconds: number): Promise<number> {
    return this.#count(`hits:${key}`, windowSeconds * 1000, Date.now()).count
  }

  async hits (key: string): Promise<number> {
    const h = this.#hits.get(`hits:${key}`)
    return h === undefined || h.resetAt <= Date.now() ? 0 : h.count
  }

  async clearHits (key: string): Promise<void> {
    this.#hits.delete(`hits:${key}`)
  }

  async rateHit (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const now = Date.now()
    const h = this.#count(`rl:${key}`, windowMs, now)
    return { count: h.count, ttlMs: h.resetAt - now }
  }

  sweep (now: number): void {
    for (const [k, at] of this.#expiring) if (at <= now) this.#expiring.delete(k)
    for (const [k, r] of this.#refresh) if (r.expiresAt <= now) this.#refresh.delete(k)
    for (const [k, h] of this.#hits) if (h.resetAt <= now) this.#hits.delete(k)
  }
}
