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

t.test('the demo page is off when configured off (the default in production)', async t => {
  const { base } = await startApp(t, { config: { demo: false } })
  t.equal((await api(base, 'GET', '/')).status, 404)
  t.equal((await api(base, 'GET', '/demo/client.js')).status, 404)
})

t.test('DEMO defaults to on in development and off in production', async t => {
  const { readConfig } = await import('../../src/config/config.ts')
  t.equal(readConfig({}, {}, '/nonexistent').demo, true)
  t.equal(readConfig({}, { NODE_ENV: 'production' }, '/nonexistent').demo, false)
  t.equal(readConfig({}, { NODE_ENV: 'production', DEMO: 'true' }, '/nonexistent').demo, true)
})
