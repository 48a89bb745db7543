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

  constructor (statusCode: number, code: string, message?: string) {
    super(message ?? STATUS_CODES[statusCode] ?? 'Error')
    this.name = 'GatecastError'
    this.statusCode = statusCode
    this.code = code
  }
}

export function isGatecastError (err: unknown): err is GatecastError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true
}
