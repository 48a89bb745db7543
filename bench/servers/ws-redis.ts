// The Node cluster floor: the bare `ws` server (bare-ws.ts: fast-jwt check
// during the upgrade, a Map of Sets of sockets per channel, `ready` first,
// `message` frames with an id) with ioredis in between, written the way a user
// of `ws` and ioredis would. A publish is serialised once, into the same
// `message` frame text as bare ws builds, and published once to the channel's
// topic; a node subscribes to a channel's topic while it has local sockets on
// it (from the first join, `ready` once the subscription is in place, to the
// last leave) and serves its sockets only from the messages Redis sends it,
// never directly. One Redis: PUBLISH/SUBSCRIBE; a Redis Cluster (redisCluster,
// a comma list of nodes): ioredis Cluster with sharded pub/sub
// (SPUBLISH/SSUBSCRIBE, one subscriber connection per shard).
// Channels on the path only (`/ws/<channel>`): the cluster scenarios use no other.
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createVerifier } from 'fast-jwt'
import { Cluster, Redis } from 'ioredis'
import type { WebSocket } from 'ws'
import { WebSocketServer } from 'ws'
import { CHANNEL_RE } from '../common.ts'
import { bearerIdentity, portOf, refuseUpgrade, runServer } from './harness.ts'
import { publishFrame, sendEach } from './rooms.ts'

interface Room {
  sockets: Set<WebSocket>
  seq: number
  /** the topic's subscription: `ready` waits for it, so no message published after `ready` can miss the socket */
  subscribed: Promise<unknown>
}

runServer(async (opts) => {
  if (opts.redisUrl === undefined) throw new Error('ws-redis needs a Redis URL')
  const verify = createVerifier({ key: opts.secret, algorithms: ['HS256'] })
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 65536 })
  const rooms = new Map<string, Room>()
  const prefix = opts.redisPrefix ?? 'wsredis'
  // the channel's hash tag puts its topic on one shard, as Gatecast's topics are
  const topicOf = (channel: string) => `${prefix}:{ch:${channel}}:pub`
  const channelOf = new Map<string, string>()

  let pub: Redis | Cluster
  let sub: Redis | Cluster
  let publish: (topic: string, text: string) => Promise<unknown>
  let subscribe: (topic: string) => Promise<unknown>
  let unsubscribe: (topic: string) => Promise<unknown>
  if (opts.redisCluster === true) {
    const urls = opts.redisUrl.split(',').map(u => new URL(u.trim()))
    const seeds = urls.map(u => ({ host: u.hostname, port: Number(u.port === '' ? 6379 : u.port) }))
    // a cluster's credentials ride on its URLs, as Gatecast reads them
    const withAuth = urls.find(u => u.password !== '')
    const redisOptions = withAuth === undefined ? {} : { password: decodeURIComponent(withAuth.password), ...(withAuth.username === '' ? {} : { username: decodeURIComponent(withAuth.username) }) }
    const cPub = new Cluster(seeds, { redisOptions })
    const cSub = new Cluster(seeds, { redisOptions, shardedSubscribers: true })
    publish = (topic, text) => cPub.spublish(topic, text)
    subscribe = topic => cSub.ssubscribe(topic)
    unsubscribe = topic => cSub.sunsubscribe(topic)
    cSub.on('smessage', (topic: string, text: string) => onMessage(topic, text))
    pub = cPub
    sub = cSub
  } else {
    const rPub = new Redis(opts.redisUrl)
    const rSub = new Redis(opts.redisUrl)
    publish = (topic, text) => rPub.publish(topic, text)
    subscribe = topic => rSub.subscribe(topic)
    unsubscribe = topic => rSub.unsubscribe(topic)
    rSub.on('message', (topic: string, text: string) => onMessage(topic, text))
    pub = rPub
    sub = rSub
  }
  const failed = (err: unknown) => { process.stderr.write(`ws-redis: ${(err as Error).message}\n`) }
  pub.on('error', failed)
  sub.on('error', failed)

  function onMessage (topic: string, text: string): void {
    const channel = channelOf.get(topic)
    const room = channel === undefined ? undefined : rooms.get(channel)
    if (room !== undefined) sendEach(room.sockets, text)
  }

  function join (channel: string, ws: WebSocket, userId: string, exp: number | null): void {
    let room = rooms.get(channel)
    if (room === undefined) {
      const topic = topicOf(channel)
      channelOf.set(topic, channel)
      room = { sockets: new Set(), seq: 0, subscribed: subscribe(topic) }
      rooms.set(channel, room)
    }
    const joined = room
    joined.sockets.add(ws)
    ws.on('error', () => {})
    joined.subscribed.then(() => {
      ws.send(JSON.stringify({ type: 'ready', channel, connectionId: randomUUID(), userId, expiresAt: exp }))
    }, (err: unknown) => {
      failed(err)
      ws.close(1011, 'subscribe failed')
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = publishFrame(data, isBinary)
      if (frame === null) return
      const text = JSON.stringify({ type: 'message', channel, id: String(++joined.seq), from: userId, data: frame.data, ts: Date.now() })
      publish(topicOf(channel), text).catch(failed)
    })
    ws.on('close', () => {
      joined.sockets.delete(ws)
      if (joined.sockets.size === 0 && rooms.get(channel) === joined) {
        rooms.delete(channel)
        const topic = topicOf(channel)
        channelOf.delete(topic)
        unsubscribe(topic).catch(failed)
      }
    })
  }

  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'application/json' }).end('{"statusCode":426,"code":"upgrade_required"}')
  })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    const m = /^\/ws\/([^/?]+)/.exec(req.url ?? '')
    const channel = m === null ? '' : decodeURIComponent(m[1])
    if (!CHANNEL_RE.test(channel)) return refuseUpgrade(socket, 400, 'bad_channel', 'invalid channel name')
    const who = bearerIdentity(req, socket, verify)
    if (who === null) return
    const { userId, exp } = who
    wss.handleUpgrade(req, socket, head, (ws) => join(channel, ws, userId, exp))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return { port: portOf(server.address()) }
})
