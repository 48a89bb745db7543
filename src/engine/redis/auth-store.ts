// Auth state in Redis: revocations and families as keys with a TTL, refresh
// tokens as a hash (record, use count), counters with a window as PEXPIRE.
import type { AuthStore } from '../auth-store.ts'
import type { RefreshRecord } from '../types.ts'
import type { RedisConnection } from './connection.ts'

export class RedisAuthStore implements AuthStore {
  readonly #c: RedisConnection

  constructor (c: RedisConnection) {
    this.#c = c
  }

  async revokeToken (jti: string, ttlSeconds: number): Promise<void> {
    await this.#c.client.set(this.#c.keys.revoked(jti), '1', 'EX', ttlSeconds)
  }

  async isTokenRevoked (jti: string): Promise<boolean> {
    return await this.#c.client.exists(this.#c.keys.revoked(jti)) === 1
  }

  async saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void> {
    const k = this.#c.keys.refresh(key)
    await this.#c.client.multi().hset(k, 'r', JSON.stringify(record), 'u', 0).expire(k, ttlSeconds).exec()
  }

  async peekRefreshToken (key: string): Promise<RefreshRecord | null> {
    const raw = await this.#c.client.hget(this.#c.keys.refresh(key), 'r')
    return raw === null ? null : JSON.parse(raw) as RefreshRecord
  }

  async useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null> {
    const out = await this.#c.scripts.useRefresh(this.#c.keys.refresh(key)) as [string, number] | null
    if (out === null) return null
    return { record: JSON.parse(out[0]) as RefreshRecord, reused: Number(out[1]) > 1 }
  }

  async revokeFamily (family: string, ttlSeconds: number): Promise<void> {
    await this.#c.client.set(this.#c.keys.family(family), '1', 'EX', ttlSeconds)
  }

  async isFamilyRevoked (family: string): Promise<boolean> {
    return await this.#c.client.exists(this.#c.keys.family(family)) === 1
  }

  async hit (key: string, windowSeconds: number): Promise<number> {
    return await this.#c.scripts.hit(this.#c.keys.hits(key), windowSeconds * 1000) as number
  }

  async hits (key: string): Promise<number> {
    return Number(await this.#c.client.get(this.#c.keys.hits(key)) ?? 0)
  }

  async clearHits (key: string): Promise<void> {
    await this.#c.client.del(this.#c.keys.hits(key))
  }

  async rateHit (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const [count, ttlMs] = await this.#c.scripts.rateHit(this.#c.keys.rate(key), windowMs) as [number, number]
    return { count, ttlMs }
  }
}
