// Fan-out (contract §3): every message reaches every socket on the channel,
// the publisher's own included, exactly once, in publish order, with the same
// id everywhere; nothing leaks to other channels.
import t from 'tap'
import { connect, type Client, type Frame } from '../../helpers/client.ts'
import { bearer, closeAtEnd, start } from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'

const messages = (c: Client): Frame[] => c.frames.filter(f => f.type === 'message')

t.test('50 sockets, 3 publishers × 100 messages: all delivered once, in order, same ids', async t => {
  const a = await start(t)
  const SOCKETS = 50
  const PUBLISHERS = 3
  const EACH = 100
  const clients: Client[] = []
  for (let i = 0; i < SOCKETS; i++) {
    // a few users hold several sockets, and some are publishers
    clients.push(await connect(`${a.ws}/ws/fan`, bearer(a.token({ sub: `user${i % 20}` }))))
  }
  closeAtEnd(t, ...clients)
  const other = await connect(`${a.ws}/ws/elsewhere`, bearer(a.token({ sub: 'user0' })))
  closeAtEnd(t, other)
  for (const c of clients) t.equal(c.frames.shift()?.type, 'ready')
  other.frames.shift()

  const publishers = clients.slice(0, PUBLISHERS)
  for (let n = 0; n < EACH; n++) {
    for (const [p, c] of publishers.entries()) c.send({ type: 'publish', data: { p, n }, ref: `${p}-${n}` })
  }
  const total = PUBLISHERS * EACH
  await waitFor(() => clients.every(c => messages(c).length >= total), { ms: 15_000, what: `every socket to get ${total} messages` })
  // a last message from the server marks the end: anything duplicated would show before it
  const { id: sentinelId } = await a.app.gatecast.publish('fan', { sentinel: true })
  await waitFor(() => clients.every(c => c.frames.some(f => f.type === 'message' && f.id === sentinelId)), { ms: 5000, what: 'the sentinel everywhere' })

  const reference = messages(clients[0]).map(f => f.id)
  t.equal(reference.length, total + 1)
  t.equal(new Set(reference).size, total + 1, 'ids are unique')
  t.equal(reference[total], sentinelId, 'the sentinel is last')
  let ok = true
  for (const [i, c] of clients.entries()) {
    const got = messages(c)
    const ids = got.map(f => f.id)
    if (got.length !== total + 1) { t.fail(`socket ${i}: ${got.length} messages, expected ${total + 1}`); ok = false; continue }
    if (ids.join() !== reference.join()) { t.fail(`socket ${i}: different ids or order than socket 0`); ok = false }
    for (let p = 0; p < PUBLISHERS; p++) {
      const ns = got.filter(f => f.data?.p === p).map(f => f.data.n)
      if (ns.join() !== Array.from({ length: EACH }, (_v, n) => n).join()) { t.fail(`socket ${i}: publisher ${p} out of order or incomplete`); ok = false }
      if (!got.filter(f => f.data?.p === p).every(f => f.from === `user${p}` && f.channel === 'fan' && typeof f.ts === 'number')) {
        t.fail(`socket ${i}: bad from/channel/ts for publisher ${p}`)
        ok = false
      }
    }
    if (got[total].from !== null) { t.fail(`socket ${i}: the server message has from ${got[total].from}`); ok = false }
  }
  t.ok(ok, `all ${SOCKETS} sockets got the same ${total + 1} messages, once each, per-publisher order kept`)

  // every publisher got one ack per message, with the id everyone saw
  for (const [p, c] of publishers.entries()) {
    const acks = c.frames.filter(f => f.type === 'ack')
    t.equal(acks.length, EACH, `publisher ${p}: ${EACH} acks`)
    const idOf = new Map(messages(c).filter(f => f.data?.p === p).map(f => [f.data.n, f.id]))
    t.ok(acks.every(ack => idOf.get(Number(String(ack.ref).split('-')[1])) === ack.id && String(ack.ref).startsWith(`${p}-`)), `publisher ${p}: ack ids match the delivered ids`)
  }
  // non-publishers got no acks, and no errors anywhere
  t.ok(clients.slice(PUBLISHERS).every(c => !c.frames.some(f => f.type === 'ack')), 'no acks for subscribers')
  t.ok(clients.every(c => !c.frames.some(f => f.type === 'error')), 'no error frames')
  t.equal(messages(other).length, 0, 'nothing leaked to another channel')
})

t.test('server API publishes interleaved with client publishes keep one order for everyone', async t => {
  const a = await start(t)
  const clients: Client[] = []
  for (let i = 0; i < 10; i++) clients.push(await connect(`${a.ws}/ws/mix`, bearer(a.token({ sub: `m${i}` }))))
  closeAtEnd(t, ...clients)
  const serverIds: string[] = []
  for (let n = 0; n < 50; n++) {
    clients[0].send({ type: 'publish', data: { c: n } })
    serverIds.push((await a.app.gatecast.publish('mix', { s: n })).id)
  }
  await waitFor(() => clients.every(c => messages(c).length === 100), { ms: 10_000, what: '100 messages each' })
  const ref = messages(clients[0]).map(f => f.id).join()
  t.ok(clients.every(c => messages(c).map(f => f.id).join() === ref), 'same sequence on every socket')
  const fromServer = messages(clients[5]).filter(f => f.from === null)
  t.same(fromServer.map(f => f.id), serverIds, 'server messages in order, with the ids publish() returned')
  t.same(fromServer.map(f => f.data.s), Array.from({ length: 50 }, (_v, n) => n))
  t.same(messages(clients[5]).filter(f => f.from === 'm0').map(f => f.data.c), Array.from({ length: 50 }, (_v, n) => n))
})
