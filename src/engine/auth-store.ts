// What auth must share between nodes: revoked tokens, refresh-token families
// and counters (failed logins, rate limits).
import type { RefreshRecord } from './types.ts'

export interface AuthStore {
  revokeToken (jti: string, ttlSeconds: number): Promise<void>
  isTokenRevoked (jti: string): Promise<boolean>
  saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void>
  /** reads a refresh token without using it */
  peekRefreshToken (key: string): Promise<RefreshRecord | null>
  /** marks the token used; `reused` when it had been used before */
  useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null>
  revokeFamily (family: string, ttlSeconds: number): Promise<void>
  isFamilyRevoked (family: string): Promise<boolean>
  /** counts a hit in a fixed window and returns the count so far */
  hit (key: string, windowSeconds: number): Promise<number>
  hits (key: string): Promise<number>
  clearHits (key: string): Promise<void>
  /**
   * counts a hit on a rate-limit counter (a key space of its own) in a fixed
   * window of `windowMs` and returns the count so far and the ms left in the window
   */
  rateHit (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }>
}
