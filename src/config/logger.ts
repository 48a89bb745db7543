// The logging the layers need: pino's call shape, so the edge passes Fastify's
// logger as it is and no layer depends on Fastify or pino.
type LogFn = {
  (obj: object, msg?: string): void
  (msg: string): void
}

export interface Logger {
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
}
