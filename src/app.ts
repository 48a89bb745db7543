// Gatecast as a Fastify plugin (no listen here: server.ts owns that), and
// build() for a ready-made instance. A host app registers the plugin beside its
// own; decorators (`gatecast`, `config`, …) are visible to it.
import { STATUS_CODES } from 'node:http'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { readConfig, type ConfigOverrides, type GatecastConfig } from './config.ts'
import type { VerifyCredentials } from './users.ts'
import { isGatecastError } from './errors.ts'
import configPlugin from '../plugins/config.ts'
import enginePlugin from '../plugins/engine.ts'
import usersPlugin from '../plugins/users.ts'
import jwtPlugin from '../plugins/jwt.ts'
import authenticatePlugin from '../plugins/authenticate.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import websocketPlugin from '../plugins/websocket.ts'
import gatecastPlugin from '../plugins/gatecast.ts'
import metricsPlugin from '../plugins/metrics.ts'
import swaggerPlugin from '../plugins/swagger.ts'
import healthRoutes from '../routes/health.ts'
import authRoutes from '../routes/auth/index.ts'
import wsRoutes from '../routes/ws/index.ts'
import apiRoutes from '../routes/api/index.ts'

export type ExtraPlugin = string | FastifyPluginAsync

export interface GatecastOptions {
  /** overrides for the environment (`JWT_SECRET` → `jwtSecret`, …) */
  config?: ConfigOverrides
  /** environment to read instead of process.env */
  env?: NodeJS.ProcessEnv
  /** where `.env` and the dev `data/` folder are; default process.cwd() */
  cwd?: string
  /** a host app's own login check; replaces USERS_FILE */
  verifyCredentials?: VerifyCredentials
  /** extra plugins registered after the core: module paths or plugin functions */
  plugins?: ExtraPlugin[]
  /** an already read config (build() passes it so config is read once) */
  resolvedConfig?: GatecastConfig
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

const gatecastApp: FastifyPluginAsync<GatecastOptions> = async (app, opts) => {
  const cwd = opts.cwd ?? process.cwd()
  const config = opts.resolvedConfig ?? readConfig(opts.config, opts.env, cwd)
  await app.register(configPlugin, { config })
  await app.register(enginePlugin)
  await app.register(usersPlugin, { verifyCredentials: opts.verifyCredentials })
  await app.register(jwtPlugin)
  await app.register(authenticatePlugin)
  await app.register(rateLimitPlugin)
  await app.register(websocketPlugin)
  await app.register(gatecastPlugin)
  await app.register(metricsPlugin)
  await app.register(swaggerPlugin)

  // routes live in their own context so the error shape does not leak into a host app
  await app.register(async (routes) => {
    routes.setErrorHandler((err: FastifyError, req, reply) => {
      // a failure while the engine is away is an outage, not a bug
      const status = err.statusCode ?? (app.engine.isReady() ? 500 : 503)
      if (status >= 500) {
        req.log.error({ err }, 'request failed')
        if (status === 503) return reply.code(503).send(errorBody(503, isGatecastError(err) ? err.code : 'unavailable', isGatecastError(err) ? err.message : 'engine unavailable'))
        return reply.code(status).send(errorBody(status, 'internal', 'internal server error'))
      }
      const code = err.validation !== undefined ? 'bad_request' : typeof err.code === 'string' && !err.code.startsWith('FST_') ? err.code : 'bad_request'
      return reply.code(status).send(errorBody(status, code, err.message))
    })
    routes.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(404, 'not_found', `route ${req.method} ${req.url.split('?')[0]} not found`)))
    await routes.register(healthRoutes)
    await routes.register(authRoutes, { prefix: '/auth' })
    await routes.register(wsRoutes)
    await routes.register(apiRoutes, { prefix: '/api' })
  })

  for (const spec of [...config.plugins, ...(opts.plugins ?? [])]) {
    await app.register(await loadPlugin(spec, cwd))
  }
}

export const gatecast = fp(gatecastApp, { name: 'gatecast', fastify: '5.x' })
export default gatecast

// What reaches logs of a request: the path only. The query may hold a token
// (`?token=`, `?Authorization=`) and headers are never logged.
export const requestSerializer = (req: { method: string, url: string, ip?: string, socket?: { remoteAddress?: string } }) => ({
  method: req.method,
  url: req.url.includes('?') ? `${req.url.slice(0, req.url.indexOf('?'))}?[redacted]` : req.url,
  remoteAddress: req.ip ?? req.socket?.remoteAddress
})

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
      : { logger: opts.logger ?? { level: config.logLevel, serializers: { req: requestSerializer } } }),
    // a token can be long; the default 100 is plenty for every route but the upgrade query
    routerOptions: { maxParamLength: 200 },
    bodyLimit: 1024 * 1024
  }).withTypeProvider<TypeBoxTypeProvider>()
  await app.register(gatecast, { ...opts, cwd, resolvedConfig: config })
  return app
}
