// A per-connection call on a node whose Redis stalls: the call's timer fires
// while its publish still waits. That rejection must reach the caller, never go
// unhandled (which would end the process and every socket on it).
import t from 'tap'
import { call, node, redisLine, socket } from '../helpers/multi.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { sleep } from '../helpers/wait.ts'

t.test('Redis stalls for longer than a node call waits: the call fails as unavailable, and the node lives on', async t => {
  const prefix = redisPrefix(t)
  const holder = await node(t, { redisUrl: REDIS_URL, redisPrefix: prefix })
  const line = await redisLine(t)
  const caller = await node(t, { redisUrl: line.url, redisPrefix: prefix })
  const { c, ready } = await socket(t, holder, '/ws', 'alice')
  const id = String(ready.connectionId)

  line.stall()
  // straight to the engine: the API's own credential check would wait on the stall first
  const pending = caller.app.engine.broker.connection(id, { op: 'info' })
  // past the call's 3 s: its timer fired while the publish was still waiting
  await sleep(3500)
  line.resume()
  await t.rejects(pending, { statusCode: 503, code: 'unavailable' }, 'the node that holds it did not answer in time')

  // the caller is still up and the same call goes through once Redis flows again
  const again = await call(caller, 'POST', `/api/connections/${encodeURIComponent(id)}/messages`, { data: 'again' })
  t.equal(again.status, 202)
  t.match(await c.nextOfType('direct'), { data: 'again' })
})
