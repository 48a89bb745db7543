import { STATUS_CODES } from 'node:http'

/**
 * An error with an HTTP status and a stable machine-readable code. Thrown by the
 * gateway and by user hooks (`onConnect`, `onPublish`) to refuse something.
 */
const brand = Symbol.for('gatecast.error')

export class GatecastError extends Error {
  // a brand rather than instanceof: a plugin may import another copy of this module
  readonly [brand] = true
  readonly statusCode: number
  readonly code: string
  /** response headers that go with the error, e.g. Retry-After */
  readonly headers: Record<string, string> | undefined

  constructor (statusCode: number, code: string, message?: string, headers?: Record<string, string>) {
    super(message ?? STATUS_CODES[statusCode] ?? 'Error')
    this.name = 'GatecastError'
    this.statusCode = statusCode
    this.code = code
    this.headers = headers
  }

  // The errors built in several places, so each status, code and usual message is written once.

  static badRequest (message: string): GatecastError {
    return new GatecastError(400, 'bad_request', message)
  }

  static badChannel (message = 'invalid channel name'): GatecastError {
    return new GatecastError(400, 'bad_channel', message)
  }

  static badSince (message = 'invalid since id'): GatecastError {
    return new GatecastError(400, 'bad_since', message)
  }

  static tokenMissing (message = 'missing token'): GatecastError {
    return new GatecastError(401, 'token_missing', message)
  }

  static tokenInvalid (message: string): GatecastError {
    return new GatecastError(401, 'token_invalid', message)
  }

  static invalidRefreshToken (message: string): GatecastError {
    return new GatecastError(401, 'invalid_refresh_token', message)
  }

  static forbidden (message: string): GatecastError {
    return new GatecastError(403, 'forbidden', message)
  }

  static upgradeRequired (message = 'this route only speaks WebSocket'): GatecastError {
    return new GatecastError(426, 'upgrade_required', message)
  }

  static rateLimited (message: string, headers?: Record<string, string>): GatecastError {
    return new GatecastError(429, 'rate_limited', message, headers)
  }

  static unavailable (message = 'engine unavailable'): GatecastError {
    return new GatecastError(503, 'unavailable', message)
  }

  static tooManyChannels (message: string): GatecastError {
    return new GatecastError(429, 'too_many_channels', message)
  }

  static shuttingDown (message = 'server is shutting down'): GatecastError {
    return new GatecastError(503, 'shutting_down', message)
  }
}

export function isGatecastError (err: unknown): err is GatecastError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true
}
