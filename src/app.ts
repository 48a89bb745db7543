// Gatecast as a Fastify plugin (no listen here: server.ts owns that), and
// build() for a ready-made instance. A host app registers the plugin beside its
// own; decorators (`gatecast`, `config`, …) are visible to it.
import { STATUS_CODES } from 'node:http'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyPluginAsync, type FastifySchemaCompiler, type FastifyServerOptions } from 'fastify'
import { Ajv, type AnySchema } from 'ajv'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { readConfig, type ConfigOverrides, type GatecastConfig } from './config.ts'
import type { LookupUser, VerifyCredentials } from './users.ts'
import { isGatecastError } from './errors.ts'
import configPlugin from '../plugins/config.ts'
import enginePlugin from '../plugins/engine.ts'
import usersPlugin from '../plugins/users.ts'
import jwtPlugin from '../plugins/jwt.ts'
import authenticatePlugin from '../plugins/authenticate.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import underPressurePlugin from '../plugins/under-pressure.ts'
import websocketPlugin from '../plugins/websocket.ts'
import gatecastPlugin from '../plugins/gatecast.ts'
import metricsPlugin from '../plugins/metrics.ts'
import swaggerPlugin from '../plugins/swagger.ts'
import healthRoutes from '../routes/health.ts'
import authRoutes from '../routes/auth/index.ts'
import wsRoutes from '../routes/ws/index.ts'
import apiRoutes from '../routes/api/index.ts'
import demoRoutes from '../routes/demo.ts'

export type ExtraPlugin = string | FastifyPluginAsync

// Bodies are checked as sent: an extra field, a number for a string or an array
// for a value is a 400, never silently repaired. Query strings and params are
// text by nature, so they keep type coercion.
const strictAjv = new Ajv({ strict: false, allErrors: false, removeAdditional: false, coerceTypes: false, useDefaults: true })
const coercingAjv = new Ajv({ strict: false, allErrors: false, removeAdditional: false, coerceTypes: 'array', useDefaults: true })
const validatorCompiler: FastifySchemaCompiler<AnySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema)

export interface GatecastOptions {
  /** overrides for the environment (`JWT_SECRET` → `jwtSecret`, …) */
  config?: ConfigOverrides
  /** environment to read instead of process.env */
  env?: NodeJS.ProcessEnv
  /** where `.env` and the dev `data/` folder are; default process.cwd() */
  cwd?: string
  /** a host app's own login check; replaces USERS_FILE */
  verifyCredentials?: VerifyCredentials
  /** with verifyCredentials: the user's current state at refresh (null = gone, the session ends) */
  lookupUser?: LookupUser
  /** extra plugins registered after the core: module paths or plugin functions */
  plugins?: ExtraPlugin[]
  /** an already read config (build() passes it so config is read once) */
  resolvedConfig?: GatecastConfig
  /** log one redacted line per request (build() turns Fastify's own request logging off for it) */
  logRequests?: boolean
}

function errorBody (statusCode: number, code: string, message: string) {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code }
}

async function loadPlugin (spec: ExtraPlugin, cwd: string): Promise<FastifyPluginAsync> {
  if (typeof spec !== 'string') return spec
  const url = spec.startsWith('.') || spec.startsWith('/') ? pathToFileURL(resolve(cwd, spec)).href : spec
  const mod = await import(url) as { default?: unknown }
  const plugin = mod.default ?? mod
  if (typeof plugin !== 'function') throw new Error(`plugin ${spec} does not export a Fastify plugin function`)
  return plugin as FastifyPluginAsync
}

/** The contract's error shape; 5xx answers never carry the error's message. */
function errorHandler (this: FastifyInstance, err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isGatecastError(err) && err.headers !== undefined) reply.headers(err.headers)
  // a failure while the engine is away is an outage, not a bug
  const status = err.statusCode ?? (this.hasDecorator('engine') && !this.engine.isReady() ? 503 : 500)
  if (status >= 500) {
    req.log.error({ err }, 'request failed')
    if (status === 503) return reply.code(503).send(errorBody(503, isGatecastError(err) ? err.code : 'unavailable', isGatecastError(err) ? err.message : 'engine unavailable'))
    return reply.code(status).send(errorBody(status, 'internal', 'internal server error'))
  }
  const code = err.validation !== undefined ? 'bad_request' : typeof err.code === 'string' && !err.code.startsWith('FST_') ? err.code : 'bad_request'
  return reply.code(status).send(errorBody(status, code, err.message))
}

const gatecastApp: FastifyPluginAsync<GatecastOptions> = async (app, opts) => {
  const cwd = opts.cwd ?? process.cwd()
  const config = opts.resolvedConfig ?? readConfig(opts.config, opts.env, cwd)
  await app.register(configPlugin, { config })
  await app.register(enginePlugin)
  await app.register(usersPlugin, { verifyCredentials: opts.verifyCredentials, lookupUser: opts.lookupUser })
  await app.register(jwtPlugin)
  await app.register(authenticatePlugin)
  await app.register(rateLimitPlugin)
  await app.register(underPressurePlugin)
  // the first preClose hook, ahead of @fastify/websocket's: upgrades are refused
  // with 503 (not dropped) while open sockets close in batches with 1001
  app.addHook('preClose', async () => {
    if (app.hasDecorator('gatecast')) await app.gatecast.shutdown(config.shutdownTimeout * 1000)
  })
  await app.register(websocketPlugin)
  await app.register(metricsPlugin)
  await app.register(gatecastPlugin)
  await app.register(swaggerPlugin)

  // routes live in their own context so the error shape does not leak into a host app
  await app.register(async (routes) => {
    routes.setValidatorCompiler(validatorCompiler)
    routes.setErrorHandler(errorHandler)
    if (opts.logRequests === true) {
      routes.addHook('onResponse', async (req, reply) => {
        req.log.info({ req: requestSerializer(req), statusCode: reply.statusCode, responseTime: Math.round(reply.elapsedTime) }, 'request completed')
      })
    }
    routes.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(404, 'not_found', `route ${req.method} ${req.url.split('?')[0]} not found`)))
    await routes.register(healthRoutes)
    await routes.register(authRoutes, { prefix: '/auth' })
    await routes.register(wsRoutes)
    await routes.register(apiRoutes, { prefix: '/api' })
    if (config.demo) await routes.register(demoRoutes)
  })

  for (const spec of [...config.plugins, ...(opts.plugins ?? [])]) {
    await app.register(await loadPlugin(spec, cwd))
  }
}

export const gatecast = fp(gatecastApp, { name: 'gatecast', fastify: '5.x' })
export default gatecast

/**
 * What reaches logs of a request: the path only. The query may hold a token
 * (`?token=`, `?Authorization=`) and headers are never logged. A host app that
 * embeds the plugin with Fastify's own request logging should use this as its
 * `req` serializer.
 */
export const requestSerializer = (req: { method: string, url: string, ip?: string, socket?: { remoteAddress?: string } }) => ({
  method: req.method,
  url: req.url.includes('?') ? `${req.url.slice(0, req.url.indexOf('?'))}?[redacted]` : req.url,
  remoteAddress: req.ip ?? req.socket?.remoteAddress
})

/** pino at LOG_LEVEL; human-readable only for a person: development on a terminal. */
export function defaultLogger (config: Pick<GatecastConfig, 'logLevel' | 'production'>, isTTY = process.stdout.isTTY === true): FastifyServerOptions['logger'] {
  if (config.production || !isTTY) return { level: config.logLevel }
  return { level: config.logLevel, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
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
    ...(opts.loggerInstance !== undefined
      ? { loggerInstance: opts.loggerInstance }
      : { logger: opts.logger ?? defaultLogger(config) }),
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
    bodyLimit: 1024 * 1024
  }).withTypeProvider<TypeBoxTypeProvider>()
  // extra plugins' routes live at the root: they get the same error shape
  app.setErrorHandler(errorHandler)
  await app.register(gatecast, { ...opts, cwd, resolvedConfig: config, logRequests: true })
  return app
}
