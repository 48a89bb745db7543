// Gatecast as a Fastify plugin: the composition root. It registers everything
// under plugins/ and routes/ with @fastify/autoload, so the folder a file lives
// in is what wires it (plugins order themselves by their `dependencies`). No
// listen here: server.ts owns that. A host app registers this plugin beside its
// own; the decorators (`gatecast`, `config`, …) are visible to it.
import { STATUS_CODES } from 'node:http'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyPluginAsync, FastifySchemaCompiler } from 'fastify'
import autoload from '@fastify/autoload'
import { Ajv, type AnySchema } from 'ajv'
import fp from 'fastify-plugin'
import { readConfig, type ConfigOverrides, type GatecastConfig } from './src/config/config.ts'
import type { LookupUser, VerifyCredentials } from './src/auth/users.ts'
import { isGatecastError } from './src/protocol/errors.ts'

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
  /** with verifyCredentials: the user's current state at refresh (null = gone, the session ends) */
  lookupUser?: LookupUser
  /** extra plugins registered after the core: module paths or plugin functions */
  plugins?: ExtraPlugin[]
  /** an already read config (build() passes it so config is read once) */
  resolvedConfig?: GatecastConfig
  /** log one redacted line per request (build() turns Fastify's own request logging off for it) */
  logRequests?: boolean
}

/** What every autoloaded plugin receives: the app's options with the config read once. */
export interface AppPluginOptions {
  app: GatecastOptions & { resolvedConfig: GatecastConfig }
}

// Bodies are checked as sent: an extra field, a number for a string or an array
// for a value is a 400, never silently repaired. Query strings and params are
// text by nature, so they keep type coercion.
const strictAjv = new Ajv({ strict: false, allErrors: false, removeAdditional: false, coerceTypes: false, useDefaults: true })
const coercingAjv = new Ajv({ strict: false, allErrors: false, removeAdditional: false, coerceTypes: 'array', useDefaults: true })
const validatorCompiler: FastifySchemaCompiler<AnySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema)

export function errorBody (statusCode: number, code: string, message: string) {
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
export function errorHandler (this: FastifyInstance, err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
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

const here = (dir: string): string => fileURLToPath(new URL(dir, import.meta.url))

const gatecastApp: FastifyPluginAsync<GatecastOptions> = async (app, opts) => {
  const cwd = opts.cwd ?? process.cwd()
  const config = opts.resolvedConfig ?? readConfig(opts.config, opts.env, cwd)
  const options: AppPluginOptions = { app: { ...opts, cwd, resolvedConfig: config } }
  // external wrappers and the decorators; each names what it needs in `dependencies`
  await app.register(autoload, { dir: here('./plugins'), options })

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
    // a folder is a URL prefix: routes/auth → /auth, routes/api → /api, routes/ws → /ws
    await routes.register(autoload, { dir: here('./routes'), options })
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
