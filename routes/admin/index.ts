// The admin console at /admin (ADMIN_CONSOLE; off in production by default):
// a page of plain files from public/admin through @fastify/static, which shows
// nothing until the person signs in, and the data it reads: who is signed in,
// one snapshot, and the live feed. Every data route takes what the server API
// takes (the API key, or a token with role admin), with the same check and
// the same limit on failed credentials. The console acts through the server
// API itself (/api): no second way to publish or disconnect.
// Off, nothing here exists: /admin is the ordinary 404.
import { fileURLToPath } from 'node:url'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { GatecastError, isGatecastError } from '../../src/protocol/errors.ts'
import { errorRef } from '../../src/protocol/rest.ts'
import { packagedFiles } from '../demo.ts'
import { Feed } from './feed.ts'
import { FocusQuerySchema, SessionSchema, SnapshotSchema } from './schemas.ts'

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url))

// This module runs from routes/admin/ (sources, tests) and from dist/routes/admin/ (built).
const ADMIN_DIRS = ['../../public/admin/', '../../../public/admin/'].map(here)

// how many feeds one node serves at once: each costs a snapshot a second
const MAX_FEEDS = 32

const PAGE = { file: 'index.html', type: 'text/html; charset=utf-8' }
// explicit types (send's table would call .js application/javascript); nothing else of the folder is served
const ASSETS = {
  '/admin.js': { file: 'admin.js', type: 'text/javascript; charset=utf-8' },
  '/charts.js': { file: 'charts.js', type: 'text/javascript; charset=utf-8' },
  '/admin.css': { file: 'admin.css', type: 'text/css; charset=utf-8' }
} as const

// the page talks to its own origin only, and runs no inline script or style
const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearer: [] }]
const denied = { 401: errorRef, 403: errorRef, 429: errorRef }

const admin: FastifyPluginAsyncTypebox = async (app) => {
  const adminConsole = app.adminConsole
  if (adminConsole === null) return

  const serve = await packagedFiles(app, ADMIN_DIRS, 'admin', (reply, asset) => {
    if (asset.file === PAGE.file) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer')
  })

  // the page is public: without credentials it shows a sign-in form and nothing else
  app.get('/', {
    schema: { hide: true, summary: 'The admin console page', response: { 200: Type.String(), 304: Type.Null(), 503: errorRef } }
  }, async (_req, reply) => serve(reply, PAGE))
  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, {
      schema: { hide: true, summary: `Admin console asset ${asset.file}`, response: { 200: Type.String(), 304: Type.Null(), 503: errorRef } }
    }, async (_req, reply) => serve(reply, asset))
  }

  const adminData: FastifyPluginAsyncTypebox = async (data) => {
    // credentials first, as on the server API
    data.addHook('onRequest', app.authenticateAdmin)

    data.get('/session', {
      schema: {
        tags: ['admin'],
        summary: 'Who the admin console is signed in as (API key, or a token with role admin)',
        security,
        response: { 200: SessionSchema, ...denied }
      }
    }, async (req) => ({
      via: req.identity === null ? 'api_key' as const : 'token' as const,
      userId: req.identity?.userId ?? null,
      expiresAt: req.identity?.exp ?? null,
      nodeId: adminConsole.nodeId
    }))

    data.get('/snapshot', {
      schema: {
        tags: ['admin'],
        summary: 'What the admin console shows, once: every live node, the busiest channels, a user sample, and optionally one channel and one user in detail',
        security,
        querystring: Type.Object(FocusQuerySchema),
        response: { 200: SnapshotSchema, 400: errorRef, ...denied, 503: errorRef }
      }
    }, async (req) => adminConsole.snapshot({ channel: req.query.channel, user: req.query.user }))

    const feeds = new Set<Feed>()
    // the node is closing: every feed ends, so the server can
    data.addHook('preClose', async () => { for (const feed of feeds) feed.end() })

    data.get('/feed', {
      // a HEAD would start a stream with nowhere to write it
      exposeHeadRoute: false,
      schema: {
        hide: true,
        summary: 'The admin console\'s live feed (text/event-stream): `series`, then `snapshot` (the body of GET /admin/snapshot) about once a second; `problem` when one failed',
        security,
        querystring: Type.Object(FocusQuerySchema),
        response: { 200: Type.String({ description: 'text/event-stream' }), 400: errorRef, ...denied, 503: errorRef }
      }
    }, async (req, reply) => {
      if (feeds.size >= MAX_FEEDS) throw new GatecastError(429, 'too_many_feeds', `this node serves ${MAX_FEEDS} admin feeds at most`)
      const exp = req.identity?.exp
      const jti = req.identity?.jti
      const feed = new Feed({
        source: adminConsole,
        res: reply.raw,
        focus: { channel: req.query.channel, user: req.query.user },
        expiresAt: exp === undefined ? null : exp * 1000,
        revoked: jti === undefined ? undefined : () => app.engine.store.isTokenRevoked(jti),
        // what the error handler would answer for GET /admin/snapshot
        problem: (err) => {
          if (isGatecastError(err)) return { statusCode: err.statusCode, code: err.code, message: err.message }
          if (!app.engine.isReady()) return { statusCode: 503, code: 'unavailable', message: 'engine unavailable' }
          req.log.error({ err }, 'admin snapshot failed')
          return { statusCode: 500, code: 'internal', message: 'internal server error' }
        }
      })
      feeds.add(feed)
      reply.hijack()
      try {
        await feed.run()
      } finally {
        feeds.delete(feed)
      }
    })
  }
  await app.register(adminData)
}

export default admin
