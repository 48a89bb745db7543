import t from 'tap'
import { api, startApp } from '../helpers/app.ts'

t.test('health and readiness', async t => {
  const { base } = await startApp(t)
  const health = await api(base, 'GET', '/health')
  t.equal(health.status, 200)
  t.same(health.body, { status: 'ok' })
  const ready = await api(base, 'GET', '/ready')
  t.equal(ready.status, 200)
  t.same(ready.body, { status: 'ok' })
})

t.test('unknown routes get the JSON error shape', async t => {
  const { base } = await startApp(t)
  const res = await api(base, 'GET', '/nope?token=secret')
  t.equal(res.status, 404)
  t.same(res.body, { statusCode: 404, error: 'Not Found', message: 'route GET /nope not found', code: 'not_found' })
})
