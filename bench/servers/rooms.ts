// What the two bare servers (ws, and the Fastify floor) do with an open socket,
// written the way a user of `ws` would: a Map of Sets of sockets per channel,
// `ready` first, then each publish serialised once and sent to every socket of
// the channel. Same frames as Gatecast.
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'

export interface Room {
  sockets: Set<WebSocket>
  seq: number
}

export function joinRoom (rooms: Map<string, Room>, channel: string, ws: WebSocket, userId: string, exp: number | null): void {
  let room = rooms.get(channel)
  if (room === undefined) rooms.set(channel, (room = { sockets: new Set(), seq: 0 }))
  const joined = room
  joined.sockets.add(ws)
  ws.send(JSON.stringify({ type: 'ready', channel, connectionId: randomUUID(), userId, expiresAt: exp }))
  ws.on('error', () => {})
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return
    let frame: { type?: unknown, data?: unknown }
    try {
      frame = JSON.parse(data.toString()) as { type?: unknown, data?: unknown }
    } catch {
      return
    }
    if (frame === null || frame.type !== 'publish') return
    const text = JSON.stringify({ type: 'message', channel, id: String(++joined.seq), from: userId, data: frame.data, ts: Date.now() })
    for (const s of joined.sockets) s.send(text)
  })
  ws.on('close', () => {
    joined.sockets.delete(ws)
    if (joined.sockets.size === 0 && rooms.get(channel) === joined) rooms.delete(channel)
  })
}
