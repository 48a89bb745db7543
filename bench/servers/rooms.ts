// What the two bare servers (ws, and the Fastify floor) do with an open socket,
// written the way a user of `ws` would: a Map of Sets of sockets per channel,
// `ready` first, then each publish serialised once and sent to every socket of
// the channel. Same frames as Gatecast.
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { frameText } from '../../src/protocol/wire.ts'
import { CHANNEL_RE } from '../common.ts'

export interface Room {
  sockets: Set<WebSocket>
  seq: number
}

/** How a room sends one serialised `message` frame to its sockets. */
export type Broadcast = (sockets: Set<WebSocket>, text: string) => void

/** What a user of `ws` writes: one `send` per socket (ws frames and writes each one). */
export const sendEach: Broadcast = (sockets, text) => {
  for (const s of sockets) s.send(text)
}

/**
 * The "Node limit" variant: the frame is built once, the same bytes are
 * written to every TCP socket, and each socket stays corked until the end of the
 * event-loop turn, so frames arriving together leave in one write. It bypasses
 * ws's sender, which is safe here only because nothing else ever writes to
 * these sockets while they are open (no ping, no compression).
 */
export function corkedBroadcast (): Broadcast {
  const corked: Socket[] = []
  const uncorkAll = (): void => {
    for (const raw of corked.splice(0)) raw.uncork()
  }
  return (sockets, text) => {
    const framed = frameText(text)
    for (const s of sockets) {
      const raw = (s as unknown as { _socket: Socket })._socket
      if (raw.writableCorked === 0) {
        raw.cork()
        if (corked.push(raw) === 1) setImmediate(uncorkAll)
      }
      raw.write(framed)
    }
  }
}

export function joinRoom (rooms: Map<string, Room>, channel: string, ws: WebSocket, userId: string, exp: number | null, broadcast: Broadcast = sendEach): void {
  let room = rooms.get(channel)
  if (room === undefined) rooms.set(channel, (room = { sockets: new Set(), seq: 0 }))
  const joined = room
  joined.sockets.add(ws)
  ws.send(JSON.stringify({ type: 'ready', channel, connectionId: randomUUID(), userId, expiresAt: exp }))
  ws.on('error', () => {})
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = publishFrame(data, isBinary)
    if (frame === null) return
    const text = JSON.stringify({ type: 'message', channel, id: String(++joined.seq), from: userId, data: frame.data, ts: Date.now() })
    broadcast(joined.sockets, text)
  })
  ws.on('close', () => {
    joined.sockets.delete(ws)
    if (joined.sockets.size === 0 && rooms.get(channel) === joined) rooms.delete(channel)
  })
}

type Ref = string | number | undefined

const refOf = (v: unknown): Ref => typeof v === 'string' || typeof v === 'number' ? v : undefined

/**
 * A socket opened on `/ws` (no path channel), the "one socket, many channels"
 * floor: it joins and leaves channels with `subscribe` / `unsubscribe` frames,
 * answered `subscribed` / `unsubscribed` like Gatecast, and publishes to one of
 * its channels with `{"type":"publish","channel":…}`. Still the naive design: a
 * Set of sockets per channel and `broadcast` (one `ws.send` per socket unless
 * corked), plus a Map of the socket's own rooms so a close leaves them all.
 */
export function attachMulti (rooms: Map<string, Room>, ws: WebSocket, userId: string, exp: number | null, broadcast: Broadcast = sendEach): void {
  const mine = new Map<string, Room>()
  ws.send(JSON.stringify({ type: 'ready', connectionId: randomUUID(), userId, expiresAt: exp }))
  const refuse = (ref: Ref, channel: unknown, message: string) => {
    ws.send(JSON.stringify({ type: 'error', ref, channel: typeof channel === 'string' ? channel : undefined, code: 'bad_request', message }))
  }
  ws.on('error', () => {})
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return
    let frame: { type?: unknown, channel?: unknown, data?: unknown, ref?: unknown }
    try {
      frame = JSON.parse(data.toString()) as typeof frame
    } catch {
      return
    }
    if (frame === null || typeof frame !== 'object') return
    const channel = frame.channel
    if (frame.type === 'publish') {
      const room = typeof channel === 'string' ? mine.get(channel) : undefined
      if (room === undefined) return refuse(refOf(frame.ref), channel, 'not subscribed to this channel')
      const text = JSON.stringify({ type: 'message', channel, id: String(++room.seq), from: userId, data: frame.data, ts: Date.now() })
      broadcast(room.sockets, text)
    } else if (frame.type === 'subscribe') {
      if (typeof channel !== 'string' || !CHANNEL_RE.test(channel)) return refuse(refOf(frame.ref), channel, 'invalid channel name')
      if (!mine.has(channel)) {
        let room = rooms.get(channel)
        if (room === undefined) rooms.set(channel, (room = { sockets: new Set(), seq: 0 }))
        room.sockets.add(ws)
        mine.set(channel, room)
      }
      ws.send(JSON.stringify({ type: 'subscribed', channel, ref: refOf(frame.ref), by: 'client' }))
    } else if (frame.type === 'unsubscribe') {
      if (typeof channel !== 'string') return refuse(refOf(frame.ref), channel, 'invalid channel name')
      const room = mine.get(channel)
      if (room !== undefined) leave(rooms, channel, room, ws)
      mine.delete(channel)
      ws.send(JSON.stringify({ type: 'unsubscribed', channel, ref: refOf(frame.ref), reason: 'client' }))
    }
  })
  ws.on('close', () => {
    for (const [channel, room] of mine) leave(rooms, channel, room, ws)
    mine.clear()
  })
}

function leave (rooms: Map<string, Room>, channel: string, room: Room, ws: WebSocket): void {
  room.sockets.delete(ws)
  if (room.sockets.size === 0 && rooms.get(channel) === room) rooms.delete(channel)
}

/** A client's `publish` frame, or null for anything else (the floors answer nothing else). */
export function publishFrame (data: Buffer, isBinary: boolean): { data?: unknown } | null {
  if (isBinary) return null
  let frame: { type?: unknown, data?: unknown } | null
  try {
    frame = JSON.parse(data.toString()) as { type?: unknown, data?: unknown } | null
  } catch {
    return null
  }
  return frame !== null && frame.type === 'publish' ? frame : null
}
