// Where an access token is read from on a request or an upgrade.
import { GatecastError } from '../protocol/errors.ts'

const BEARER_RE = /^Bearer\s+(\S+)$/i

/** one value, repeated values (an array), or none */
const allValues = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.map(String) : []

/** The parts of a request a token can come from, so routes need not keep the request. */
export interface TokenSources {
  /** every value of the header (`req.raw.headersDistinct.authorization`) */
  authorization?: string | readonly string[]
  protocol?: string | string[]
  query: Record<string, unknown>
}

/**
 * Reads the token from, in order: Authorization header, `bearer.<jwt>`
 * subprotocol, `?token=`, `?Authorization=`. Tokens found in more than one
 * place must agree.
 */
export function extractToken (src: TokenSources): string | null {
  const found: string[] = []
  // every Authorization header counts (Node keeps only the first in req.headers): two that
  // differ are a conflict, not a choice, since a proxy may have read the other one
  for (const h of allValues(src.authorization)) {
    const m = BEARER_RE.exec(h.trim())
    if (m === null) throw GatecastError.tokenInvalid('Authorization header must be "Bearer <token>"')
    found.push(m[1])
  }
  const protocols = Array.isArray(src.protocol) ? src.protocol.join(',') : src.protocol
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const t = p.trim()
      if (t.startsWith('bearer.')) found.push(t.slice(7))
    }
  }
  // a repeated query parameter arrives as an array: every copy counts, so two that differ conflict
  for (const t of allValues(src.query.token)) found.push(t)
  for (const a of allValues(src.query.Authorization)) {
    const m = BEARER_RE.exec(a.trim())
    found.push(m === null ? a.trim() : m[1])
  }
  if (found.length === 0) return null
  const token = found[0]
  if (token === '' || found.some(t => t !== token)) throw GatecastError.tokenInvalid('conflicting or empty tokens')
  return token
}
