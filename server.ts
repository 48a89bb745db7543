// The process: the Fastify instance, logger, listen, signals and graceful close.
// build() makes an instance with the app plugin (app.ts) registered; start()
// reads the config once, listens and closes on signals.
import closeWithGrace from 'close-with-grace'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { clientErrorHandler, errorBody, errorHandler, gatecast, logSerializers, type GatecastOptions } from './app.ts'
import { ConfigError, readConfig, type GatecastConfig } from './src/config/config.ts'

/** pino at LOG_LEVEL; human-readable only for a person: development on a terminal. */
export function defaultLogger (config: Pick<GatecastConfig, 'logLevel' | 'production'>, isTTY = process.stdout.isTTY === true): FastifyServerOptions['logger'] {
  if (config.production || !isTTY) return { level: config.logLevel }
  return { level: config.logLevel, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
}

// Gatecast's serializers come last: a caller's `req` must not bring the query back
function withLogSerializers (logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === undefined || logger === false) return logger
  const options = logger === true ? {} : logger
  return { ...options, serializers: { ...options.serializers, ...logSerializers } }
}

export interface BuildOptions extends GatecastOptions {
  /** Fastify's logger option; default: pino at LOG_LEVEL */
  logger?: FastifyServerOptions['logger']
  loggerInstance?: FastifyServerOptions['loggerInstance']
}

/** A Fastify instance with Gatecast registered, ready to listen or inject. */
export async function build (opts: BuildOptions = {}): Promise<FastifyInstance> {
  const cwd = opts.cwd ?? process.cwd()
  const config = opts.resolvedConfig ?? readConfig(opts.config, opts.env, cwd)
  const app = Fastify({
    // whatever logger is passed in, a logged URL (`req`, `path`) carries no query
    ...(opts.loggerInstance !== undefined
      ? { loggerInstance: opts.loggerInstance.child({}, { serializers: logSerializers }) }
      : { logger: withLogSerializers(opts.logger ?? defaultLogger(config)) }),
    // Fastify's request lines would carry the query (tokens) whatever logger is
    // passed in; the routes log their own redacted line instead
    logController: new LogController({ disableRequestLogging: true }),
    // while closing, /ready and the upgrade route answer 503 themselves, in the contract's shape
    return503OnClosing: false,
    // long enough that an overlong channel name reaches the route and gets its 400
    routerOptions: { maxParamLength: 2048 },
    frameworkErrors: (err, req, reply) => {
      // an upgrade refused this early skipped @fastify/websocket's hooks: end its socket here
      if (req.headers.upgrade !== undefined) reply.raw.once('finish', () => req.raw.socket.destroy())
      const raw = reply as unknown as { code: (n: number) => { send: (body: unknown) => void } }
      raw.code(400).send(errorBody(400, 'bad_request', err.message.replace(/ for url .*$/, '')))
    },
    // Fastify's default logs a malformed request's raw bytes (tokens, API key) at trace
    clientErrorHandler,
    bodyLimit: 1024 * 1024,
    // req.ip, which the per-IP limits key on, is then the client behind the proxy
    trustProxy: config.trustProxy
  }).withTypeProvider<TypeBoxTypeProvider>()
  // extra plugins' routes live at the root: they get the same error shape
  app.setErrorHandler(errorHandler)
  await app.register(gatecast, { ...opts, cwd, resolvedConfig: config, logRequests: true })
  return app
}

export async function start (opts: BuildOptions = {}): Promise<void> {
  let config
  try {
    config = readConfig(opts.config, opts.env, opts.cwd)
  } catch (err) {
    fail(err)
  }
  const app = await build({ ...opts, resolvedConfig: config }).catch(fail)
  // sockets get shutdownTimeout to close; the process a little more to flush and exit
  closeWithGrace({ delay: config.shutdownTimeout * 1000 + 5000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })
  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (err) {
    fail(err)
  }
}

function fail (err: unknown): never {
  // configuration mistakes are the user's to fix: one line, no trace
  if (err instanceof ConfigError) process.stderr.write(`gatecast: ${err.message}\n`)
  else process.stderr.write(`gatecast: failed to start: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await start()
}
