// The protocol's numbers and names that both ends compare against. No imports:
// the client library loads this module in browsers, where nothing of the
// server (TypeBox included) may come along.

/** WebSocket close codes the server sends. */
export const CloseCodes = {
  shuttingDown: 1001,
  policy: 1008,
  tooLarge: 1009,
  unauthorized: 4401,
  forbidden: 4403,
  slowConsumer: 4408,
  rateLimited: 4429
} as const

export type CloseCode = typeof CloseCodes[keyof typeof CloseCodes]

/** The `code` of an `error` frame. */
export const ERROR_CODES = ['bad_request', 'forbidden', 'rate_limited', 'too_large', 'too_many_channels', 'unavailable', 'internal'] as const

export type ErrorCode = typeof ERROR_CODES[number]
