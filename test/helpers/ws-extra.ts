// Extra helpers for WebSocket tests: hand-made JWTs, raw sockets and
// refused-upgrade checks that also prove no socket was opened on the server.
// Polling waits and sleep() are in ./wait.ts.
import { createHmac } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import net, { type Socket } from 'node:net'
import WebSocket, { type ClientOptions } from 'ws'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { SECRET, startApp, type TestApp } from './app.ts'
import { Client, type Frame } from './client.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'
import type { BuildOptions } from '../../server.ts'

export type WsOptions = ClientOptions & { protocols?: string[] }

/** startApp without a users file (no demo users, no scrypt at boot) unless one is given. */
export async function start (t: Test, config: ConfigOverrides = {}, opts: Omit<BuildOptions, 'config'> = {}): Promise<TestApp> {
  return startApp(t, { ...opts, config: { usersFile: null, ...config } })
}

export const nowSec = (): number => Math.floor(Date.now() / 1000)

export const b64url = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

/**
 * A JWT built by hand, so every field is under the test's control:
 * any header (`alg: none` included), any claims (no defaults are added).
 */
export function signJwt (payload: Record<string, unknown>, o: { alg?: string, key?: string, header?: Record<string, unknown> } = {}): string {
  const alg = o.alg ?? 'HS256'
  const head = b64url({ alg, typ: 'JWT', ...o.header })
  const body = b64url(payload)
  const input = `${head}.${body}`
  if (alg === 'none') return `${input}.`
  const hash = ({ HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as Record<string, string>)[alg]
  if (hash === undefined) throw new Error(`signJwt: unsupported alg ${alg}`)
  return `${input}.${createHmac(hash, o.key ?? SECRET).update(input).digest('base64url')}`
}

/** Standard claims for a user, valid for `ttl` seconds. */
export function claims (sub: string, ttl = 600, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSec()
  return { sub, iat, exp: iat + ttl, jti: `jti-${Math.random().toString(36).slice(2)}`, ...extra }
}

/** The client's TCP socket: pausing it stops reading, so the kernel buffers fill, then the server's. */
export const rawSocket = (c: Client): Socket => (c.ws as unknown as { _socket: Socket })._socket

export const bearer = (token: string): WsOptions => ({ headers: { authorization: `Bearer ${token}` } })

export interface UpgradeOutcome {
  /** true when the server accepted the upgrade (a socket was opened) */
  opened: boolean
  status: number
  body: any
  headers: Record<string, string | string[] | undefined>
  error?: Error
}

/** Tries an upgrade and reports what happened, never hanging longer than `ms`. */
export async function tryUpgrade (url: string, opts: WsOptions = {}, ms = 3000): Promise<UpgradeOutcome> {
  const ws = new WebSocket(url, opts.protocols ?? [], opts)
  ws.on('error', () => {}) // terminate() below emits one more
  return new Promise((resolve) => {
    const timer = setTimeout(() => { ws.terminate(); resolve({ opened: false, status: 0, body: null, headers: {}, error: new Error('upgrade timed out') }) }, ms)
    ws.once('open', () => {
      clearTimeout(timer)
      ws.terminate()
      resolve({ opened: true, status: 101, body: null, headers: {} })
    })
    ws.once('error', (err) => {
      clearTimeout(timer)
      resolve({ opened: false, status: 0, body: null, headers: {}, error: err })
    })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        clearTimeout(timer)
        // with an 'unexpected-response' listener, aborting the request is up to us
        ws.terminate()
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ opened: false, status: res.statusCode ?? 0, body, headers: res.headers })
      })
    })
  })
}

/**
 * Asserts that an upgrade is refused with `status` and the JSON error shape
 * `{ statusCode, error, message, code }`, and that no socket was opened:
 * the client never saw `open`, the hub holds no more sockets than before and
 * no `socket open` line was logged.
 */
export async function expectRefused (t: Test, a: TestApp, url: string, opts: WsOptions, status: number, code?: string, label = ''): Promise<UpgradeOutcome> {
  const before = a.app.gatecast.hub.size
  const openLogs = countLogs(a.logs, 'socket open')
  const res = await tryUpgrade(url, opts)
  const p = label === '' ? '' : `${label}: `
  t.equal(res.opened, false, `${p}no socket opened (client side)`)
  t.equal(res.status, status, `${p}HTTP ${status}`)
  t.match(res.body, { statusCode: status, error: STATUS_CODES[status], message: String, code: code ?? String }, `${p}JSON error body`)
  t.same(Object.keys(res.body ?? {}).sort(), ['code', 'error', 'message', 'statusCode'], `${p}exactly the error fields`)
  t.equal(a.app.gatecast.hub.size, before, `${p}no socket on the server`)
  t.equal(countLogs(a.logs, 'socket open'), openLogs, `${p}no socket open logged`)
  return res
}

/** Log lines (parsed pino JSON) whose msg is `msg`. */
export function logLines (logs: string[], msg: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = []
  for (const chunk of logs) {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue
      try {
        const obj = JSON.parse(line) as Record<string, any>
        if (obj.msg === msg) out.push(obj)
      } catch {}
    }
  }
  return out
}

export const countLogs = (logs: string[], msg: string): number => logLines(logs, msg).length

export { open } from './client.ts'

/** Sends a ping frame and waits for the pong: proves the socket is open and served. */
export async function pingPong (c: Client, ms = 3000): Promise<Frame> {
  c.send({ type: 'ping' })
  return c.nextOfType('pong', ms)
}

/** Collects the server-side sockets as they are accepted. */
export function serverSockets (app: FastifyInstance): WebSocket[] {
  const list: WebSocket[] = []
  app.websocketServer.on('connection', (ws: WebSocket) => { list.push(ws) })
  return list
}

/** Terminates every client at teardown. */
export function closeAtEnd (t: Test, ...clients: Client[]): void {
  t.teardown(() => { for (const c of clients) c.ws.terminate() })
}

/** Resolves with the close event, or rejects after `ms`. */
export async function closedWithin (c: Client, ms: number): Promise<{ code: number, reason: string }> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      c.closed,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`socket not closed within ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Sends a raw upgrade request over TCP and reports the response head and
 * whether the server closed the connection within `ms` (the socket is
 * destroyed by us afterwards either way).
 */
export async function rawUpgrade (base: string, path: string, ms = 1500): Promise<{ head: string, serverClosed: boolean }> {
  const { port, hostname } = new URL(base)
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    })
    let out = ''
    s.on('data', d => { out += d.toString() })
    s.on('error', () => {})
    const timer = setTimeout(() => { s.destroy(); resolve({ head: out, serverClosed: false }) }, ms)
    s.on('close', () => { clearTimeout(timer); resolve({ head: out, serverClosed: true }) })
  })
}
