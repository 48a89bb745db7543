import { STATUS_CODES } from 'node:http'

/**
 * An error with an HTTP status and a stable machine-readable code. Thrown by the
 * gateway and by user hooks (`onConnect`, `onPublish`) to refuse something.
 */
export class GatecastError extends Error {
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
  return err instanceof GatecastError
}
