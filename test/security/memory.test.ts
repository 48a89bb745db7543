// Slow consumers (issue 5, item 5): a client that stops reading is closed 4408
// once its send buffer passes WS_SEND_BUFFER, before the server's memory grows
// with what it cannot deliver. Measured in this process — the server's — while
// 200 MB are published to a socket whose TCP reads are paused, with a reader
// on the same channel that must keep getting everything. A control run with
// the limit raised out of the way shows the measurement would catch its loss.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import WebSocket from 'ws'
import { connect } from '../helpers/client.ts'
import { bearer, closedWithin, logLines, rawSocket, serverSockets, start } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'
import type { TestApp } from '../helpers/app.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const MB = 1024 * 1024

/** Retained memory: what is left after a full collection (heap + Buffers). */
function retained (): { rss: number, heap: number, external: number } {
  gc()
  gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed, external: m.external + m.arrayBuffers }
}

/** A reader that counts what it gets and keeps nothing, so the test holds no memory of its own. */
async function countingReader (a: TestApp, channel: string, sub: string): Promise<{ ws: WebSocket, count: () => number, lastN: () => number, inOrder: () => boolean }> {
  const ws = new WebSocket(`${a.ws}/ws/${channel}`, bearer(a.token({ sub })))
  let count = 0
  let lastN = -1
  let inOrder = true
  ws.on('message', (data: Buffer) => {
    // the frame's head is enough: {"type":"message",…,"data":{"n":123,"big":"…
    const head = data.subarray(0, 200).toString()
    const m = /"data":\{"n":(\d+)/.exec(head)
    if (m === null) return
    const n = Number(m[1])
    if (n !== lastN + 1) inOrder = false
    lastN = n
    count++
  })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  return { ws, count: () => count, lastN: () => lastN, inOrder: () => inOrder }
}

interface Run {
  published: number
  bytes: number
  growth: { rss: number, heap: number, external: number }
  maxBuffered: number
  slowOpen: boolean
}

/** Publishes `total` bytes in `size` messages on `channel` while `slow` does not read; samples retained memory. */
async function firehose (a: TestApp, channel: string, size: number, total: number, slowServer: WebSocket, stop: () => boolean = () => false): Promise<Run> {
  const big = 'z'.repeat(size)
  const base = retained()
  let peak = { ...base }
  let maxBuffered = 0
  let published = 0
  for (let bytes = 0; bytes < total && !stop(); bytes += size) {
    await a.app.gatecast.publish(channel, { n: published, big })
    published++
    maxBuffered = Math.max(maxBuffered, slowServer.bufferedAmount)
    // let the sockets write and the reader read, as a real server's loop would
    await new Promise(resolve => setImmediate(resolve))
    if (published % 50 === 0) {
      const m = retained()
      peak = { rss: Math.max(peak.rss, m.rss), heap: Math.max(peak.heap, m.heap), external: Math.max(peak.external, m.external) }
    }
  }
  const end = retained()
  peak = { rss: Math.max(peak.rss, end.rss), heap: Math.max(peak.heap, end.heap), external: Math.max(peak.external, end.external) }
  return {
    published,
    bytes: published * size,
    growth: { rss: peak.rss - base.rss, heap: peak.heap - base.heap, external: peak.external - base.external },
    maxBuffered,
    slowOpen: slowServer.readyState === WebSocket.OPEN
  }
}

const mb = (n: number): string => `${(n / MB).toFixed(1)} MB`

t.test('a socket that stops reading is closed 4408 while 200 MB are published to it; memory stays bounded', async t => {
  // history off in this namespace: what is measured is buffering, not the history a channel keeps by design
  const a = await start(t, { channels: { firehose: { historySize: 0 } } })
  const sendBuffer = a.app.config.wsSendBuffer
  t.equal(sendBuffer, 1024 * 1024, 'the default WS_SEND_BUFFER (1 MiB)')
  const server = serverSockets(a.app)
  const slow = await connect(`${a.ws}/ws/firehose:live`, bearer(a.token({ sub: 'slow' })))
  t.teardown(() => slow.ws.terminate())
  await slow.nextOfType('ready')
  const reader = await countingReader(a, 'firehose:live', 'reader')
  t.teardown(() => reader.ws.terminate())
  await waitFor(() => server.length === 2 && a.app.gatecast.hub.size === 2, { ms: 2000, what: 'both sockets on the server' })
  const slowServer = server[0]

  rawSocket(slow).pause() // the client stops reading: kernel buffers fill, then the server's
  const size = 256 * 1024
  const run = await firehose(a, 'firehose:live', size, 200 * MB, slowServer)
  t.equal(run.bytes, 200 * MB, `published ${mb(run.bytes)} in ${run.published} messages of 256 KiB`)
  t.notOk(run.slowOpen, 'the slow socket is no longer open on the server')
  t.equal(a.app.gatecast.hub.size, 1, 'only the reader is left on the channel')
  // a second over the limit, or four times over it at once: the hard bound
  t.ok(run.maxBuffered <= 4 * sendBuffer + size + 1024, `its server-side buffer never passed four times the limit by more than one message (max ${mb(run.maxBuffered)})`)
  t.ok(run.growth.rss < 50 * MB, `rss grew ${mb(run.growth.rss)} (< 50 MB) while 200 MB went out`)
  t.ok(run.growth.heap + run.growth.external < 20 * MB, `retained heap + buffers grew ${mb(run.growth.heap + run.growth.external)} (< 20 MB)`)

  // the reader got every message, in order
  await waitFor(() => reader.count() === run.published, { ms: 20_000, what: 'the reader got everything' })
  t.ok(reader.inOrder(), 'the reader got them in publish order')

  // the slow client, once it reads again, gets what was queued and then 4408
  rawSocket(slow).resume()
  const closed = await closedWithin(slow, 10_000)
  t.equal(closed.code, 4408, 'the slow client sees close 4408 (slow consumer)')
  const got = slow.frames.filter(f => f.type === 'message').map(f => f.data.n as number)
  t.ok(got.length < run.published / 10, `it got a prefix (${got.length} of ${run.published})`)
  t.same(got, Array.from({ length: got.length }, (_v, i) => i), 'a gap-free prefix: reconnecting with since loses nothing')
  await waitFor(() => logLines(a.logs, 'socket closed').some(l => l.code === 4408 && l.userId === 'slow'), { ms: 3000, what: 'the 4408 close is logged' })
})

t.test('slow consumers of direct frames (sendToUser, broadcast) are closed 4408 too', async t => {
  const a = await start(t, { wsSendBuffer: 256 * 1024 })
  const server = serverSockets(a.app)
  const slow = await connect(`${a.ws}/ws/lobby`, bearer(a.token({ sub: 'slow' })))
  t.teardown(() => slow.ws.terminate())
  await slow.nextOfType('ready')
  rawSocket(slow).pause()
  const big = 'd'.repeat(128 * 1024)
  const base = retained()
  let sent = 0
  for (; sent < 400 && server[0].readyState === WebSocket.OPEN; sent++) {
    if (sent % 2 === 0) await a.app.gatecast.sendToUser('slow', { n: sent, big })
    else await a.app.gatecast.broadcast({ n: sent, big })
    await new Promise(resolve => setImmediate(resolve))
  }
  for (let i = 0; i < 100; i++) await a.app.gatecast.broadcast({ after: i, big })
  const growth = retained()
  t.ok(sent < 400, `dropped after ${sent} direct frames of 128 KiB`)
  t.equal(a.app.gatecast.hub.size, 0, 'the socket is off the hub')
  t.ok(growth.heap + growth.external - base.heap - base.external < 10 * MB, `retained memory grew ${mb(growth.heap + growth.external - base.heap - base.external)} (< 10 MB)`)
  rawSocket(slow).resume()
  t.equal((await closedWithin(slow, 10_000)).code, 4408, 'closed 4408')
})

t.test('control: with the limit out of the way, the same measurement sees the buffer grow', async t => {
  // WS_SEND_BUFFER at 1 GiB stands for "no protection": the server queues what the client does not read
  const a = await start(t, { wsSendBuffer: 1024 * MB, channels: { firehose: { historySize: 0 } } })
  const server = serverSockets(a.app)
  const slow = await connect(`${a.ws}/ws/firehose:live`, bearer(a.token({ sub: 'slow' })))
  t.teardown(() => slow.ws.terminate())
  await slow.nextOfType('ready')
  rawSocket(slow).pause()
  const run = await firehose(a, 'firehose:live', 256 * 1024, 96 * MB, server[0])
  t.ok(run.slowOpen, 'the slow socket is still open: nothing stopped it')
  t.ok(run.maxBuffered > 64 * MB, `its server-side buffer reached ${mb(run.maxBuffered)}`)
  t.ok(run.growth.heap + run.growth.external > 50 * MB, `retained memory grew ${mb(run.growth.heap + run.growth.external)}: the protected run's bound is not an accident of measuring`)
  slow.ws.terminate()
})
