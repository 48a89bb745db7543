// Helpers for the one-socket-many-channels tests: exact frame sequences (the
// frame queue of Client read in arrival order), sockets on `/ws`, nodes on one
// Redis, and a Redis line that can be cut, so a node in this process can die
// to the rest of the cluster without a word (no leave, no reaping of itself).
import net from 'node:net'
import WebSocket from 'ws'
import { api, startApp, type TestApp } from './app.ts'
import { Client, connect, type Frame } from './client.ts'
import { REDIS_URL, redisPrefix } from './redis.ts'
import { sleep } from './wait.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

export const KEY = 'multi-channel-tests-api-key-0123456789-0123456789'
export const auth = { 'x-api-key': KEY }

/** startApp without a users file (no demo users, no scrypt at boot), with the API key. */
export async function node (t: Teardown, config: ConfigOverrides = {}): Promise<TestApp> {
  return startApp(t, { config: { usersFile: null, apiKey: KEY, ...config } })
}

/** `n` nodes on one Redis, under a key prefix of the test's own (deleted at teardown). */
export async function cluster (t: Teardown, n: number, config: ConfigOverrides = {}, redisUrl = REDIS_URL): Promise<TestApp[]> {
  const prefix = redisPrefix(t)
  const nodes: TestApp[] = []
  for (let i = 0; i < n; i++) nodes.push(await node(t, { redisUrl, redisPrefix: prefix, ...config }))
  return nodes
}

/** The server API with the key. */
export function call (a: TestApp, method: string, path: string, body?: unknown): ReturnType<typeof api> {
  return api(a.base, method, path, { headers: auth, ...(body === undefined ? {} : { body }) })
}

export const bearerOf = (token: string): { headers: { authorization: string } } => ({ headers: { authorization: `Bearer ${token}` } })

/**
 * A socket of `user` on `path` (`/ws`, `/ws/chat`…), its `ready` taken off the
 * queue, so what follows can be read as an exact sequence. Terminated at teardown.
 */
export async function socket (t: Teardown, a: TestApp, path: string, user: string, claims: Record<string, unknown> = {}): Promise<{ c: Client, ready: Frame }> {
  const c = await connect(`${a.ws}${path}`, bearerOf(a.token({ sub: user, ...claims })))
  t.teardown(() => c.ws.terminate())
  const ready = await c.next()
  if (ready.type !== 'ready') throw new Error(`first frame is ${JSON.stringify(ready)}, not ready`)
  return { c, ready }
}

/** The next `n` frames in arrival order, whatever their type (removed from the queue). */
export async function take (c: Client, n: number, ms = 3000): Promise<Frame[]> {
  const out: Frame[] = []
  for (let i = 0; i < n; i++) out.push(await c.next(() => true, ms))
  return out
}

/** Waits `ms`, then removes and returns every frame that arrived: for "and nothing else came". */
export async function settle (c: Client, ms = 150): Promise<Frame[]> {
  await sleep(ms)
  return c.frames.splice(0)
}

/** subscribe, and the `subscribed` answer (the next frame, whatever it is). */
export async function subscribe (c: Client, channel: string, o: { since?: string, ref?: string | number } = {}): Promise<Frame> {
  c.send({ type: 'subscribe', channel, ...o })
  return c.next()
}

/** The sequence number of a message id (`<epoch>:<seq>`): ids are opaque to clients, not to these tests. */
export function seqOf (id: string): number {
  const m = /:(\d+)$/.exec(id)
  if (m === null) throw new Error(`not a message id: ${id}`)
  return Number(m[1])
}

/**
 * A TCP relay to Redis that a test can cut: a node given its URL loses Redis
 * at once, with no chance to leave the cluster, and cannot reconnect (the
 * listener goes too). To the other nodes it is dead. It can also stall: what
 * the node sends waits in the relay (no error, no answer) until it resumes.
 */
export async function redisLine (t: Teardown, target = REDIS_URL): Promise<{ url: string, cut: () => void, stall: () => void, resume: () => void }> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<net.Socket>()
  // the node's side of each connection, and where it goes
  const lines = new Map<net.Socket, net.Socket>()
  const server = net.createServer(inbound => {
    const outbound = net.connect(Number(port), hostname)
    lines.set(inbound, outbound)
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); lines.delete(inbound); inbound.destroy(); outbound.destroy() })
    }
    inbound.pipe(outbound)
    outbound.pipe(inbound)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as net.AddressInfo
  const cut = (): void => {
    server.close()
    for (const s of sockets) s.destroy()
  }
  t.teardown(cut)
  // paused, the node's bytes wait in the relay's socket buffer
  const stall = (): void => { for (const [inbound, outbound] of lines) { inbound.unpipe(outbound); inbound.pause() } }
  const resume = (): void => { for (const [inbound, outbound] of lines) inbound.pipe(outbound) }
  return { url: `redis://127.0.0.1:${address.port}`, cut, stall, resume }
}

export type Attempt = { opened: true, client: Client } | { opened: false, status: number, body: any }

/** An upgrade that may be refused: the open client (kept open), or the refusal's status and JSON body. */
export async function attempt (url: string, token: string, ms = 5000): Promise<Attempt> {
  const ws = new WebSocket(url, bearerOf(token))
  const client = new Client(ws)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`upgrade of ${url}: no answer within ${ms} ms`)) }, ms)
    ws.once('open', () => { clearTimeout(timer); resolve({ opened: true, client }) })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => {
        clearTimeout(timer)
        ws.terminate()
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ opened: false, status: res.statusCode ?? 0, body })
      })
    })
  })
}

/**
 * Starts an upgrade by hand with the token in the header and drops the TCP
 * connection after `ms`, before the server could answer it: `fin` closes it
 * (the server may not notice until it writes), `rst` resets it (the server's
 * socket errors and closes at once).
 */
export async function abandonedUpgrade (base: string, path: string, token: string, ms: number, how: 'fin' | 'rst' = 'fin'): Promise<void> {
  const { port, hostname } = new URL(base)
  await new Promise<void>(resolve => {
    const s = net.connect(Number(port), hostname, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Authorization: Bearer ${token}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
      setTimeout(() => {
        if (how === 'rst') s.resetAndDestroy()
        else s.destroy()
        resolve()
      }, ms)
    })
    s.on('error', () => {})
  })
}
