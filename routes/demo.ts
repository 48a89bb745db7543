// The demo page at `/`: a small chat built on the client library (`gatecast/client`).
// GET /demo/client.js is the client compiled to plain ESM (dist/client/index.js,
// made by `npm run build`) and GET /demo/codes.js the protocol codes it imports;
// the page itself lives in public/.
import { readFile } from 'node:fs/promises'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { GatecastError } from '../src/protocol/errors.ts'
import { errorRef } from '../src/protocol/rest.ts'

// This module runs from routes/ (sources, tests) and from dist/routes/ (built).
const CLIENT_BUNDLE = ['../client/index.js', '../dist/client/index.js']
const CODES_MODULE = ['../src/protocol/codes.js', '../dist/src/protocol/codes.js']
const PUBLIC_DIR = ['../public/', '../../public/']

// The compiled client imports the codes by their place in the package, which a
// browser would fetch as /src/protocol/codes.js; it gets them beside itself.
const CODES_IMPORT = /(from\s*)(["'])\.\.\/src\/protocol\/codes\.js\2/g

const clientNotBuilt = (): GatecastError =>
  new GatecastError(503, 'client_not_built', 'the client bundle is missing: run `npm run build`')

// the source map is not served
const withoutSourceMap = (text: string): string => text.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n')

const ASSETS = {
  '/': { file: 'demo.html', type: 'text/html; charset=utf-8' },
  '/demo/demo.js': { file: 'demo.js', type: 'text/javascript; charset=utf-8' },
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

async function firstReadable (candidates: string[]): Promise<string | null> {
  for (const rel of candidates) {
    try {
      return await readFile(new URL(rel, import.meta.url), 'utf8')
    } catch {}
  }
  return null
}

const demo: FastifyPluginAsyncTypebox = async (app) => {
  if (!app.config.demo) return
  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, {
      schema: {
        hide: true,
        summary: `Demo page asset ${asset.file}`,
        response: { 200: Type.String(), 503: errorRef }
      }
    }, async (_req, reply) => {
      const text = await firstReadable(PUBLIC_DIR.map(dir => dir + asset.file))
      if (text === null) throw new GatecastError(503, 'demo_missing', `demo asset ${asset.file} not found`)
      reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type(asset.type)
      if (asset.file === 'demo.html') reply.header('content-security-policy', CSP)
      return text
    })
  }

  app.get('/demo/client.js', {
    schema: {
      hide: true,
      summary: 'The Gatecast client library as a browser ES module',
      response: { 200: Type.String(), 503: errorRef }
    }
  }, async (_req, reply) => {
    const text = await firstReadable(CLIENT_BUNDLE)
    if (text === null) throw clientNotBuilt()
    reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type('text/javascript; charset=utf-8')
    return withoutSourceMap(text).replace(CODES_IMPORT, '$1$2./codes.js$2')
  })

  app.get('/demo/codes.js', {
    schema: {
      hide: true,
      summary: 'The protocol codes the client library imports, as a browser ES module',
      response: { 200: Type.String(), 503: errorRef }
    }
  }, async (_req, reply) => {
    const text = await firstReadable(CODES_MODULE)
    if (text === null) throw clientNotBuilt()
    reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type('text/javascript; charset=utf-8')
    return withoutSourceMap(text)
  })
}

export default demo
