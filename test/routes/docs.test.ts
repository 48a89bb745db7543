import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import { startApp } from '../helpers/app.ts'

const CONTRACT_ROUTES = [
  'post /auth/login', 'post /auth/refresh', 'post /auth/logout',
  'get /health', 'get /ready', 'get /metrics', 'get /ws/{channel}',
  'post /api/channels/{channel}/messages', 'get /api/channels/{channel}/messages', 'get /api/channels',
  'get /api/channels/{channel}/presence', 'post /api/broadcast', 'post /api/users/{userId}/messages',
  'get /api/users/{userId}', 'delete /api/users/{userId}/connections'
]

t.test('/docs/json is a valid OpenAPI 3 document with every route of the contract', async t => {
  const { base } = await startApp(t)
  const res = await fetch(`${base}/docs/json`)
  t.equal(res.status, 200)
  const doc = await res.json() as { openapi: string, paths: Record<string, Record<string, { responses?: Record<string, unknown>, security?: unknown }>> }
  t.match(doc.openapi, /^3\./)
  const validator = new Validator()
  const result = await validator.validate(doc)
  t.same(result.errors ?? [], [], 'no OpenAPI schema errors')
  t.equal(result.valid, true)
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map(m => `${m} ${path}`))
  for (const route of CONTRACT_ROUTES) t.ok(documented.includes(route), `${route} is documented`)
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      t.ok(op.responses !== undefined && Object.keys(op.responses).length > 0, `${method} ${path} documents its responses`)
    }
  }
  t.ok(doc.paths['/api/channels']?.get?.security, 'the server API names its auth')
  const ui = await fetch(`${base}/docs`, { redirect: 'follow' })
  t.equal(ui.status, 200)
  t.match(await ui.text(), /swagger/i)
})
