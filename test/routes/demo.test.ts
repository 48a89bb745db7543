import { request } from 'node:http'
import t from 'tap'
import { api, startApp } from '../helpers/app.ts'

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: string }

// node:http rather than fetch: fetch adds `cache-control: no-cache` to a conditional
// request, which asks for the full body (an end-to-end reload) and never gets a 304
async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    request(url, { method, headers }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    }).on('error', reject).end()
  })
}

t.test('the demo page is served in development', async t => {
  const { base } = await startApp(t)
  const res = await fetch(`${base}/`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/html/)
  t.match(res.headers.get('content-security-policy'), /default-src 'self'/)
  t.match(await res.text(), /<html/i)
  const client = await fetch(`${base}/demo/client.js`)
  t.equal(client.status, 200)
  t.match(await client.text(), /export function connect/)
})

t.test('the client bundle loads its codes from beside itself (/demo/codes.js)', async t => {
  const { base } = await startApp(t)
  const client = await (await fetch(`${base}/demo/client.js`)).text()
  t.match(client, /from\s*["']\.\/codes\.js["']/, 'the import points at /demo/codes.js')
  t.notMatch(client, /\.\.\/src\//, 'no path into the package layout (a browser would fetch /src/...)')
  t.notMatch(client, /sourceMappingURL/)
  const res = await fetch(`${base}/demo/codes.js`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/javascript/)
  t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  const text = await res.text()
  t.notMatch(text, /sourceMappingURL/)
  t.notMatch(text, /^\s*import\b/m, 'the codes module loads nothing further')
  const served = await import(`data:text/javascript,${encodeURIComponent(text)}`) as typeof import('../../src/protocol/codes.ts')
  const { CloseCodes, ERROR_CODES } = await import('../../src/protocol/codes.ts')
  t.same(served.CloseCodes, CloseCodes, 'the browser gets the server\'s close codes')
  t.same(served.ERROR_CODES, ERROR_CODES)
})

t.test('the demo page is off when configured off (the default in production)', async t => {
  const { base } = await startApp(t, { config: { demo: false } })
  const root = await api(base, 'GET', '/')
  t.equal(root.status, 426, '`/` only takes WebSocket upgrades (the GatewayWorker form)')
  t.equal(root.body.code, 'upgrade_required')
  t.equal((await api(base, 'GET', '/demo/client.js')).status, 404)
  t.equal((await api(base, 'GET', '/demo/codes.js')).status, 404)
})

t.test('DEMO defaults to on in development and off in production', async t => {
  const { readConfig } = await import('../../src/config/config.ts')
  t.equal(readConfig({}, {}, '/nonexistent').demo, true)
  t.equal(readConfig({}, { NODE_ENV: 'production' }, '/nonexistent').demo, false)
  t.equal(readConfig({}, { NODE_ENV: 'production', DEMO: 'true' }, '/nonexistent').demo, true)
})

const PAGE_ASSETS: Array<[string, RegExp]> = [
  ['/', /^text\/html; charset=utf-8$/],
  ['/demo/demo.js', /^text\/javascript; charset=utf-8$/],
  ['/demo/demo.css', /^text\/css; charset=utf-8$/],
  ['/demo/client.js', /^text\/javascript; charset=utf-8$/],
  ['/demo/codes.js', /^text\/javascript; charset=utf-8$/]
]

t.test('every demo asset carries validators, and a conditional request gets 304 with no body', async t => {
  const { base } = await startApp(t)
  for (const [path, type] of PAGE_ASSETS) {
    const res = await get(base + path)
    t.equal(res.status, 200, `${path} 200`)
    t.ok(res.body.length > 0, `${path} has a body`)
    t.match(res.headers['content-type'], type, `${path} content-type`)
    t.equal(res.headers['cache-control'], 'no-cache', `${path}: the browser revalidates every time`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${path} nosniff`)
    const etag = res.headers.etag as string
    const lastModified = res.headers['last-modified'] as string
    t.match(etag, /^(W\/)?"[^"]+"$/, `${path} has an ETag`)
    t.notOk(Number.isNaN(Date.parse(lastModified)), `${path} has a Last-Modified date`)
    if (path === '/') t.match(res.headers['content-security-policy'], /default-src 'self'/, 'the page keeps its CSP')
    t.equal((await get(base + path)).headers.etag, etag, `${path}: the same ETag for the same content`)

    const cached = await get(base + path, { 'if-none-match': etag })
    t.equal(cached.status, 304, `${path}: If-None-Match → 304`)
    t.equal(cached.body, '', `${path}: 304 has no body`)
    t.equal(cached.headers.etag, etag, `${path}: 304 repeats the ETag`)
    t.equal(cached.headers['cache-control'], 'no-cache', `${path}: 304 keeps cache-control`)
    t.equal(cached.headers['x-content-type-options'], 'nosniff', `${path}: 304 keeps nosniff`)
    t.equal(cached.headers['content-type'], undefined, `${path}: 304 describes no body`)
    if (path === '/') t.match(cached.headers['content-security-policy'], /default-src 'self'/, 'the 304 of the page keeps its CSP')

    const strong = etag.replace(/^W\//, '')
    t.equal((await get(base + path, { 'if-none-match': `"other", W/${strong}` })).status, 304, `${path}: a list holding the tag (weak comparison) → 304`)
    t.equal((await get(base + path, { 'if-modified-since': lastModified })).status, 304, `${path}: If-Modified-Since → 304`)

    const stale = await get(base + path, { 'if-none-match': '"not-the-current-one"', 'if-modified-since': lastModified })
    t.equal(stale.status, 200, `${path}: another ETag → 200 (If-None-Match wins over If-Modified-Since)`)
    t.equal(stale.body, res.body, `${path}: the full body again`)
    const older = new Date(Date.parse(lastModified) - 60_000).toUTCString()
    t.equal((await get(base + path, { 'if-modified-since': older })).status, 200, `${path}: modified since → 200`)
    const reload = await get(base + path, { 'if-none-match': etag, 'cache-control': 'no-cache' })
    t.equal(reload.status, 200, `${path}: an end-to-end reload (request no-cache) gets the body`)
    t.equal(reload.body, res.body)

    const head = await get(base + path, {}, 'HEAD')
    t.equal(head.status, 200, `${path}: HEAD`)
    t.equal(head.headers.etag, etag, `${path}: HEAD carries the ETag`)
  }
})

t.test('the rewritten modules\' ETag is a strong tag of the text served', async t => {
  const { base } = await startApp(t)
  const client = await get(`${base}/demo/client.js`)
  const codes = await get(`${base}/demo/codes.js`)
  t.match(client.headers.etag, /^"[A-Za-z0-9_-]+"$/, 'strong: the bytes themselves')
  t.not(client.headers.etag, codes.headers.etag, 'each module its own tag')
})

t.test('the demo page is off: no asset is served', async t => {
  const { base } = await startApp(t, { config: { demo: false } })
  for (const [path] of PAGE_ASSETS) t.equal((await api(base, 'GET', path)).status, path === '/' ? 426 : 404, `${path} not served`)
})
