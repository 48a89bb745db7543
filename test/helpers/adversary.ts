// Tools for the adversarial suite (test/security): raw HTTP and raw WebSocket
// frames over TCP, a schema check of every server frame, and a bystander socket
// that proves the rest of the server is unaffected by what an attacker does.
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import WebSocket from 'ws'
import type { Test } from 'tap'
import { ServerFrameSchema } from '../../src/protocol/frames.ts'
import { connect, type Client, type Frame } from './client.ts'
import type { TestApp } from './app.ts'
import { eventually } from './wait.ts'

const serverFrame = TypeCompiler.Compile(ServerFrameSchema)

/** The documented server → client frames (contract §3), as the protocol module declares them. */
export function isServerFrame (f: unknown): boolean {
  return serverFrame.Check(f)
}

export function serverFrameProblem (f: unknown): string {
  const e = serverFrame.Errors(f).First()
  return e === undefined ? '' : `${e.path} ${e.message}`
}

/** Nesting depth of a JSON value, counted like MAX_DATA_DEPTH (a scalar is 0, [] is 1). Iterative. */
export function depthOf (value: unknown): number {
  let max = 0
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number]
    if (v === null || typeof v !== 'object') continue
    const here = d + 1
    if (here > max) max = here
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, here])
  }
  return max
}

export const nested = (depth: number, inner = '0'): string => '['.repeat(depth) + inner + ']'.repeat(depth)
export const nestedObjects = (depth: number): string => '{"a":'.repeat(depth) + '0' + '}'.repeat(depth)

// --- a bystander ------------------------------------------------------------------

export interface Bystander {
  client: Client
  /** raw text of every frame received, as it came off the wire */
  raw: string[]
  /**
   * Proves the socket is served and unharmed: a ping round trip and a server
   * publish both arrive within `ms`, and every frame so far was a documented,
   * well-formed frame. Returns the slower of the two latencies.
   */
  healthy: (t: Test, label?: string, ms?: number) => Promise<number>
  /** message frames received from users other than the server */
  messagesFrom: (userId: string) => Frame[]
}

let probes = 0

export async function bystander (t: Test, a: TestApp, channel: string, sub = 'bystander'): Promise<Bystander> {
  const client = await connect(`${a.ws}/ws/${encodeURIComponent(channel)}`, { headers: { authorization: `Bearer ${a.token({ sub })}` } })
  t.teardown(() => client.ws.terminate())
  await client.nextOfType('ready')
  const raw: string[] = []
  client.ws.on('message', (data, isBinary) => { raw.push(isBinary ? '<binary>' : data.toString()) })
  return {
    client,
    raw,
    async healthy (t, label = 'bystander', ms = 2000) {
      const t0 = Date.now()
      client.send({ type: 'ping' })
      await client.nextOfType('pong', ms)
      const ping = Date.now() - t0
      const probe = `probe-${++probes}`
      const t1 = Date.now()
      await a.app.gatecast.publish(channel, { probe })
      await client.next(f => f.type === 'message' && f.data?.probe === probe, ms)
      const publish = Date.now() - t1
      t.equal(client.ws.readyState, WebSocket.OPEN, `${label}: still open`)
      const bad = raw.filter(r => { try { return !isServerFrame(JSON.parse(r)) } catch { return true } })
      t.same(bad, [], `${label}: every frame received is a documented, well-formed frame`)
      // what another socket does can never show up here as an ack, an error or `refreshed`
      const unexpected = raw.flatMap(r => { try { return [JSON.parse(r) as Frame] } catch { return [] } })
        .filter(f => !['message', 'direct', 'presence', 'pong', 'ready'].includes(f.type))
      t.same(unexpected, [], `${label}: only message/direct/presence/pong frames reached it`)
      return Math.max(ping, publish)
    },
    messagesFrom (userId) {
      return raw.map(r => JSON.parse(r) as Frame).filter(f => f.type === 'message' && f.from === userId)
    }
  }
}

// --- raw HTTP over TCP ----------------------------------------------------------------

export interface RawResult {
  /** everything the server sent, as latin1 */
  text: string
  /** HTTP status of the first response line, 0 when none */
  status: number
  /** the server closed the connection before `ms` */
  serverClosed: boolean
}

/** Writes `request` on a fresh TCP connection and collects the answer for up to `ms`. */
export async function rawRequest (base: string, request: string | Buffer, ms = 1500): Promise<RawResult> {
  const { port, hostname } = new URL(base)
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    const s = net.connect(Number(port), hostname, () => s.write(request))
    s.on('data', d => chunks.push(d))
    s.on('error', () => {})
    const done = (serverClosed: boolean): void => {
      clearTimeout(timer)
      s.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ text, status: m === null ? 0 : Number(m[1]), serverClosed })
    }
    const timer = setTimeout(() => done(false), ms)
    s.on('close', () => done(true))
  })
}

export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

/** An upgrade request with every header under the caller's control. */
export function upgradeRequest (path: string, headers: Record<string, string | string[]>, requestLine = `GET ${path} HTTP/1.1`): string {
  const lines = [requestLine]
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`)
  }
  return lines.join('\r\n') + '\r\n\r\n'
}

export function upgradeHeaders (token: string | null, extra: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return {
    Host: '127.0.0.1',
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': WS_KEY,
    ...(token !== null ? { Authorization: `Bearer ${token}` } : {}),
    ...extra
  }
}

// --- raw WebSocket frames ---------------------------------------------------------------

/** Encodes one client frame by hand, so any bit can be wrong. */
export function encodeFrame (opcode: number, payload: Buffer, o: { fin?: boolean, mask?: boolean, rsv?: number, declaredLength?: bigint } = {}): Buffer {
  const fin = o.fin ?? true
  const mask = o.mask ?? true
  const len = o.declaredLength ?? BigInt(payload.length)
  let head: Buffer
  if (len < 126n) {
    head = Buffer.from([0, Number(len)])
  } else if (len < 65536n) {
    head = Buffer.alloc(4)
    head[1] = 126
    head.writeUInt16BE(Number(len), 2)
  } else {
    head = Buffer.alloc(10)
    head[1] = 127
    head.writeBigUInt64BE(len, 2)
  }
  head[0] = (fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode
  if (!mask) return Buffer.concat([head, payload])
  head[1] |= 0x80
  const key = randomBytes(4)
  const body = Buffer.from(payload)
  for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4]
  return Buffer.concat([head, key, body])
}

/**
 * Many small masked text frames in one buffer, built in place (mask key 0, which
 * RFC 6455 allows): a flood whose making costs the test process next to nothing.
 */
export function textFrames (payloads: string[]): Buffer {
  const bodies = payloads.map(p => Buffer.from(p))
  if (bodies.some(b => b.length >= 126)) throw new Error('textFrames: payloads must be under 126 bytes')
  const out = Buffer.alloc(bodies.reduce((n, b) => n + 6 + b.length, 0))
  let at = 0
  for (const b of bodies) {
    out[at] = 0x81
    out[at + 1] = 0x80 | b.length
    // bytes at+2..at+5: the mask key, zero
    b.copy(out, at + 6)
    at += 6 + b.length
  }
  return out
}

export interface ServerWsFrame { opcode: number, payload: Buffer }

/** Decodes the (unmasked) frames a server sent after its 101 head. */
export function decodeServerFrames (bytes: Buffer): ServerWsFrame[] {
  const out: ServerWsFrame[] = []
  let i = 0
  while (i + 2 <= bytes.length) {
    const opcode = bytes[i] & 0x0f
    let len = bytes[i + 1] & 0x7f
    let p = i + 2
    if (len === 126) { len = bytes.readUInt16BE(p); p += 2 } else if (len === 127) { len = Number(bytes.readBigUInt64BE(p)); p += 8 }
    if (p + len > bytes.length) break
    out.push({ opcode, payload: bytes.subarray(p, p + len) })
    i = p + len
  }
  return out
}

export interface RawWs {
  socket: net.Socket
  /** the server's frames so far (after the 101 head) */
  frames: () => ServerWsFrame[]
  /** close code the server sent, once it closed; null if it never did within `ms` */
  closeCode: (ms?: number) => Promise<number | null>
  write: (b: Buffer) => void
  destroy: () => void
}

/** A WebSocket opened by hand over TCP (101 checked), for frames no real client would send. */
export async function rawWebSocket (base: string, path: string, token: string): Promise<RawWs> {
  const { port, hostname } = new URL(base)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  let buf = Buffer.alloc(0)
  let headEnd = -1
  const state = { closed: false }
  socket.on('close', () => { state.closed = true })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(upgradeRequest(path, upgradeHeaders(token))))
    socket.on('data', d => {
      buf = Buffer.concat([buf, d])
      if (headEnd === -1) {
        headEnd = buf.indexOf('\r\n\r\n')
        if (headEnd !== -1) {
          const head = buf.subarray(0, headEnd).toString()
          if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`))
          else resolve()
        }
      }
    })
    socket.once('close', () => reject(new Error('closed before the upgrade')))
  })
  const frames = (): ServerWsFrame[] => decodeServerFrames(buf.subarray(headEnd + 4))
  const codeOf = (): number | null => {
    const close = frames().find(f => f.opcode === 8)
    return close === undefined ? null : close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005
  }
  return {
    socket,
    frames,
    async closeCode (ms = 2000) {
      await eventually(() => codeOf() !== null || state.closed, { ms })
      return codeOf()
    },
    write: b => { socket.write(b) },
    destroy: () => { socket.destroy() }
  }
}
