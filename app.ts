// Gatecast as a Fastify plugin: the composition root. It registers everything
// under plugins/ and routes/ with @fastify/autoload, so the folder a file lives
// in is what wires it (plugins order themselves by their `dependencies`). No
// listen here: server.ts owns that. A host app registers this plugin beside its
// own; the decorators (`gatecast`, `config`, …) are visible to it.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyPluginAsync, FastifySchemaCompiler } from 'fastify'
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
    // @fastify/websocket logs through the route's instance logger, not the request's:
    // under a host app's logger too, what it logs of Gatecast's routes goes through logSerializers
    routes.log = routes.log.child({}, { serializers: logSerializers })
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

function withoutQuery (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * What reaches logs of a request: the path only. The query may hold a token
 * (`?token=`, `?Authorization=`) and headers are never logged. A host app that
 * embeds the plugin with Fastify's own request logging should use this as its
 * `req` serializer (or all of `logSerializers`).
 */
export const requestSerializer = (req: { method: string, url: string, ip?: string, socket?: { remoteAddress?: string }, remoteAddress?: string }) => ({
  method: req.method,
  url: req.url.includes('?') ? `${withoutQuery(req.url)}?[redacted]` : req.url,
  // pino runs the `req` serializer again on a line that logs this result: keep its address
  remoteAddress: req.ip ?? req.socket?.remoteAddress ?? req.remoteAddress
})

/**
 * A `path` logged as a URL loses its query. @fastify/websocket logs `{ path: url }`
 * (at info, the whole URL) when it closes an upgrade to a route without a
 * WebSocket handler: `/?Authorization=Bearer <jwt>`, the GatewayWorker-style URL, is one.
 */
export const pathSerializer = (path: unknown): unknown =>
  typeof path === 'string' ? withoutQuery(path) : path

/** The serializers build() gives its logger; a host app embedding the plugin adds them to its own. */
export const logSerializers = { req: requestSerializer, path: pathSerializer }

const clientErrors: Record<string, [status: number, message: string, label: string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Client Timeout', 'timeout'],
  HPE_HEADER_OVERFLOW: [431, 'Exceeded maximum allowed HTTP header size', 'header_overflow']
}

/**
 * Fastify's own answer to a request Node could not parse (the same 400, 408 or
 * 431 and body), but its log line has the error's code and message only: the
 * default one logs the error's `rawPacket`, the request's bytes as sent, with
 * the query and the Authorization and X-API-Key headers. A server option: a host
 * app passes it to `Fastify({ clientErrorHandler })` itself.
 */
export function clientErrorHandler (this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  // a reset connection has nobody left to answer
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message, label] = clientErrors[err.code] ?? [400, 'Client Error', 'error']
  this.log.trace({ err: { code: err.code, message: err.message } }, `client ${label}`)
  if (socket.writable) {
    const body = JSON.stringify({ error: STATUS_CODES[status], message, statusCode: status })
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\n\r\n${body}`)
  }
  socket.destroy(err)
}
