// The demo page at `/`: a small chat built on the client library (`gatecast/client`).
// The page itself lives in public/ and goes out through @fastify/static (ETag,
// Last-Modified, 304). GET /demo/client.js is the client compiled to plain ESM
// (dist/client/index.js, made by `npm run build`) and GET /demo/codes.js the
// protocol codes it imports; both are rewritten on the way out, so they carry an
// ETag of the text actually served.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { access, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatecastError } from '../src/protocol/errors.ts'
import { errorRef } from '../src/protocol/rest.ts'
import { upgradeRoute } from './ws/index.ts'

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url))

// This module runs from routes/ (sources, tests) and from dist/routes/ (built).
const CLIENT_BUNDLE = ['../client/index.js', '../dist/client/index.js'].map(here)
const CODES_MODULE = ['../src/protocol/codes.js', '../dist/src/protocol/codes.js'].map(here)
const PUBLIC_DIRS = ['../public/', '../../public/'].map(here)

// The compiled client imports the codes by their place in the package, which a
// browser would fetch as /src/protocol/codes.js; it gets them beside itself.
const CODES_IMPORT = /(from\s*)(["'])\.\.\/src\/protocol\/codes\.js\2/g

const clientNotBuilt = (): GatecastError =>
  new GatecastError(503, 'client_not_built', 'the client bundle is missing: run `npm run build`')

// the source map is not served
const withoutSourceMap = (text: string): string => text.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n')

const JS = 'text/javascript; charset=utf-8'

const PAGE = { file: 'demo.html', type: 'text/html; charset=utf-8' }

// explicit types: send's table would call .js application/javascript
const ASSETS = {
  '/demo/demo.js': { file: 'demo.js', type: JS },
  '/demo/demo.css': { file: 'demo.css', type: 'text/css; charset=utf-8' }
} as const

// the page only talks to its own origin (REST and WebSocket)
const CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

// no-cache: the browser keeps a copy but asks each time, so a new build shows at once
function commonHeaders (reply: FastifyReply, type: string): void {
  reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type(type)
}

/** A rewritten module as served: its text, and the validators of that text. */
interface Served { path: string, version: string, text: string, etag: string, lastModified: Date }

/**
 * The first of `candidates` that exists, rewritten by `transform`. The text and
 * its hash are kept until the file changes (a rebuild), so a request costs one stat.
 */
function rewritten (candidates: string[], transform: (text: string) => string): () => Promise<Served | null> {
  let kept: Served | null = null
  return async () => {
    for (const path of candidates) {
      let st
      try {
        st = await stat(path)
      } catch {
        continue
      }
      const version = `${st.mtimeMs}:${st.size}`
      if (kept?.path === path && kept.version === version) return kept
      const text = transform(await readFile(path, 'utf8'))
      const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`
      kept = { path, version, text, etag, lastModified: st.mtime }
      return kept
    }
    return null
  }
}

/**
 * Whether the client's copy is current (RFC 9110 §13.1.2-3: If-None-Match wins;
 * weak comparison), decided as @fastify/send decides it for the page's files.
 */
function notModified (req: FastifyRequest, served: Served): boolean {
  // an end-to-end reload asks for the body whatever it holds
  if (req.headers['cache-control']?.includes('no-cache') === true) return false
  const ifNoneMatch = req.headers['if-none-match']
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.split(',').some(tag => {
      const t = tag.trim()
      return t === '*' || t === served.etag || t === `W/${served.etag}`
    })
  }
  const since = Date.parse(req.headers['if-modified-since'] ?? '')
  // HTTP dates have whole seconds
  return !Number.isNaN(since) && Math.floor(served.lastModified.getTime() / 1000) * 1000 <= since
}

/** A file of the package that a route serves, with its content type. */
export interface PackagedFile { file: string, type: string }

/**
 * Serves files of the package from the first of `dirs` that exists (sources or
 * dist/), only through the routes that ask for them: registers @fastify/static
 * without its own routes, and returns the function those routes answer with.
 * A missing file is a broken package, so a 503 `<what>_missing`, not a 404.
 * Also used by the admin console (routes/admin/).
 */
export async function packagedFiles (app: FastifyInstance, dirs: readonly string[], what: string, headers?: (reply: FastifyReply, asset: PackagedFile) => void): Promise<(reply: FastifyReply, asset: PackagedFile) => Promise<FastifyReply>> {
  // a root that does not exist would only be warned about at every start; the
  // first that does is the one, and a missing asset is the 503 below
  const root = dirs.find(dir => existsSync(dir)) ?? dirs[0]
  await app.register(fastifyStatic, {
    root,
    // only the routes that ask; nothing else of the folder is reachable
    serve: false,
    index: false,
    // commonHeaders sets cache-control and the type
    cacheControl: false
  })
  // a 304 describes no body
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode === 304) reply.removeHeader('content-type')
    return payload
  })
  return async (reply, asset) => {
    // @fastify/static would answer a missing file with the 404 handler: the asset
    // is part of the package, so its absence is the server's fault
    try {
      await access(join(root, asset.file))
    } catch {
      throw new GatecastError(503, `${what}_missing`, `${what} asset ${asset.file} not found`)
    }
    commonHeaders(reply, asset.type)
    headers?.(reply, asset)
    return reply.sendFile(asset.file, { contentType: false })
  }
}

const demo: FastifyPluginAsyncTypebox = async (app) => {
  // `/` is also where GatewayWorker clients open their sockets, demo or not
  if (!app.config.demo) {
    app.route(upgradeRoute(app, '/'))
    return
  }

  const serve = await packagedFiles(app, PUBLIC_DIRS, 'demo', (reply, asset) => {
    if (asset.file === PAGE.file) reply.header('content-security-policy', CSP)
  })
  app.route(upgradeRoute(app, '/', (_req, reply) => serve(reply, PAGE)))
  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, {
      schema: {
        hide: true,
        summary: `Demo page asset ${asset.file}`,
        response: { 200: Type.String(), 503: errorRef }
      }
    }, async (_req, reply) => serve(reply, asset))
  }

  const modules = {
    '/demo/client.js': {
      summary: 'The Gatecast client library as a browser ES module',
      load: rewritten(CLIENT_BUNDLE, text => withoutSourceMap(text).replace(CODES_IMPORT, '$1$2./codes.js$2'))
    },
    '/demo/codes.js': {
      summary: 'The protocol codes the client library imports, as a browser ES module',
      load: rewritten(CODES_MODULE, withoutSourceMap)
    }
  }
  for (const [url, mod] of Object.entries(modules)) {
    app.get(url, {
      schema: {
        hide: true,
        summary: mod.summary,
        response: { 200: Type.String(), 304: Type.Null(), 503: errorRef }
      }
    }, async (req, reply) => {
      const served = await mod.load()
      if (served === null) throw clientNotBuilt()
      commonHeaders(reply, JS)
      reply.header('etag', served.etag).header('last-modified', served.lastModified.toUTCString())
      if (notModified(req, served)) return reply.code(304).send(null)
      return served.text
    })
  }
}

export default demo
