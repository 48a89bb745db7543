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
}

export function isGatecastError (err: unknown): err is GatecastError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true
}
