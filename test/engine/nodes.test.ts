// The node registry of both engines (what the admin console reads): each
// node's latest report, questions put to every node, and on Redis the
// reports of several nodes under one prefix, a node that leaves, a node that
// died (reaped with its heartbeat) and a report too old to believe.
import t from 'tap'
import { KINDS, openEngine, rawRedis, sleep, until } from '../helpers/engine.ts'

for (const kind of KINDS) {
  t.test(`${kind}: a node's latest report, read back`, async t => {
    const { engine } = await openEngine(t, kind)
    const nodes = engine.nodes
    t.match(nodes.nodeId, /^[A-Za-z0-9_-]{8,}$/)
    const before = await nodes.list()
    t.same(before.map(n => [n.nodeId, n.report]), [[nodes.nodeId, null]], 'the node is live before it reports')
    await nodes.report('{"first":1}')
    await nodes.report('{"second":2}')
    const [me] = await nodes.list()
    t.equal(me.report, '{"second":2}', 'the latest report replaces the one before')
    t.ok(Math.abs(me.at - Date.now()) < 2000, 'with the time it was made')
  })

  t.test(`${kind}: questions reach a node that answers, and only while it does`, async t => {
    const { engine } = await openEngine(t, kind)
    const nodes = engine.nodes
    t.same(await nodes.ask('anyone?', 300), [], 'nobody answers yet')
    const asked: string[] = []
    await nodes.answer(q => { asked.push(q); return `echo ${q}` })
    t.same(await nodes.ask('hello', 2000), [{ nodeId: nodes.nodeId, answer: 'echo hello' }])
    t.same(asked, ['hello'])
    await nodes.answer(() => { throw new Error('cannot say') })
    const started = Date.now()
    t.same(await nodes.ask('hard one', 300), [], 'a handler that throws gives no answer')
    t.ok(Date.now() - started < 1500, 'and the asker gives up at its timeout')
    await nodes.answer(null)
    t.same(await nodes.ask('still there?', 300), [], 'a node that stopped answering is not asked')
  })
}

for (const kind of ['redis', 'cluster'] as const) {
  t.test(`${kind}: every node of the cluster reports, answers, and leaves the registry when it leaves`, async t => {
    const a = await openEngine(t, kind)
    const b = await openEngine(t, kind, { prefix: a.prefix })
    await a.engine.nodes.report('from a')
    await b.engine.nodes.report('from b')
    const listed = await a.engine.nodes.list()
    t.same(listed.map(n => [n.nodeId, n.report]), [[a.engine.nodes.nodeId, 'from a'], [b.engine.nodes.nodeId, 'from b']].sort(), 'both nodes, each with its own report (sorted by id)')
    t.same(await b.engine.nodes.list(), listed, 'every node reads the same')
    if (kind === 'redis') {
      const raw = await rawRedis(t).hgetall(`${a.prefix}:nodereports`)
      t.match(raw[a.engine.nodes.nodeId], /^\d{13} from a$/, 'a field per node under the prefix: the time, then the report')
    }

    await a.engine.nodes.answer(q => `a: ${q}`)
    await b.engine.nodes.answer(q => `b: ${q}`)
    const answers = await a.engine.nodes.ask('who is there', 2000)
    t.same(answers.map(x => [x.nodeId, x.answer]).sort(), [[a.engine.nodes.nodeId, 'a: who is there'], [b.engine.nodes.nodeId, 'b: who is there']].sort(), 'every node answers, the asker too')
    const fromB = await b.engine.nodes.ask('and you', 2000)
    t.equal(fromB.length, 2, 'any node can ask')

    await b.close()
    t.same((await a.engine.nodes.list()).map(n => n.nodeId), [a.engine.nodes.nodeId], 'a node that left is no longer listed')
    if (kind === 'redis') t.notOk(b.engine.nodes.nodeId in await rawRedis(t).hgetall(`${a.prefix}:nodereports`), 'and its report is gone from Redis')
    t.same((await a.engine.nodes.ask('alone?', 2000)).map(x => x.nodeId), [a.engine.nodes.nodeId])
  })
}

t.test('redis: a dead node is not listed, and its report is reaped with its heartbeat', async t => {
  const a = await openEngine(t, 'redis', { nodeTimeoutMs: 600 })
  const r = rawRedis(t)
  const p = a.prefix
  // a node that stopped beating long ago, and its last report
  await r.hset(`${p}:nodes`, 'ghost', Date.now() - 60_000)
  await r.hset(`${p}:nodereports`, 'ghost', `${Date.now() - 60_000} {"from":"the dead"}`)
  t.same((await a.engine.nodes.list()).map(n => n.nodeId), [a.engine.nodes.nodeId], 'not listed while it waits for its reaper')
  await until(async () => !('ghost' in await r.hgetall(`${p}:nodereports`)) && !('ghost' in await r.hgetall(`${p}:nodes`)), 'the ghost reaped', 5000)
  t.pass('its heartbeat and its report went together')
})

t.test('redis: a report older than the node timeout says nothing about a node that still beats', async t => {
  const a = await openEngine(t, 'redis', { nodeTimeoutMs: 1500 })
  const r = rawRedis(t)
  await r.hset(`${a.prefix}:nodereports`, a.engine.nodes.nodeId, `${Date.now() - 5000} {"stale":true}`)
  const [me] = await a.engine.nodes.list()
  t.equal(me.report, null, 'a stale report is not shown as current')
  await a.engine.nodes.report('fresh')
  t.equal((await a.engine.nodes.list())[0].report, 'fresh')
  await sleep(10)
})
