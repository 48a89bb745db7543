import t from 'tap'
import { api, startApp } from '../helpers/app.ts'

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
  t.equal((await api(base, 'GET', '/')).status, 404)
  t.equal((await api(base, 'GET', '/demo/client.js')).status, 404)
  t.equal((await api(base, 'GET', '/demo/codes.js')).status, 404)
})

t.test('DEMO defaults to on in development and off in production', async t => {
  const { readConfig } = await import('../../src/config/config.ts')
  t.equal(readConfig({}, {}, '/nonexistent').demo, true)
  t.equal(readConfig({}, { NODE_ENV: 'production' }, '/nonexistent').demo, false)
  t.equal(readConfig({}, { NODE_ENV: 'production', DEMO: 'true' }, '/nonexistent').demo, true)
})
