// The WebSocket protocol, both directions, in one place: the client frames are
// compiled once for validation, and the same schemas document the protocol and
// type the client library.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { MESSAGE_BEFORE_CHANNEL, MESSAGE_BEFORE_DATA, MESSAGE_BEFORE_FROM, MESSAGE_BEFORE_ID, MESSAGE_BEFORE_TS, MESSAGE_END } from './message-layout.ts'
import { ERROR_CODES } from './codes.ts'

export { CloseCodes, ERROR_CODES, type CloseCode, type ErrorCode } from './codes.ts'

export const CHANNEL_PATTERN = '^[A-Za-z0-9_.:@#,-]{1,128}$'
export const ChannelNameSchema = Type.String({ pattern: CHANNEL_PATTERN, description: 'Channel name; `ns:rest` belongs to namespace `ns`; `name#a,b` only admits users a and b' })

export const RefSchema = Type.Union([Type.String({ maxLength: 256 }), Type.Number()], { description: 'Opaque value echoed in the ack or error' })
export const DataSchema = Type.Unknown({ description: 'Any JSON value' })
export const ErrorCodeSchema = Type.Union(ERROR_CODES.map(code => Type.Literal(code)))

// client → server
export const PublishFrameSchema = Type.Object({
  type: Type.Literal('publish'),
  channel: Type.Optional(Type.String({ description: 'A channel this socket is subscribed to; default: the path channel' })),
  data: DataSchema,
  ref: Type.Optional(RefSchema)
}, { additionalProperties: false })
export const SubscribeFrameSchema = Type.Object({
  type: Type.Literal('subscribe'),
  channel: Type.String({ description: 'Channel to join; the same checks as the path channel of an upgrade' }),
  since: Type.Optional(Type.String({ description: 'Last message id seen: replay everything after it before live messages' })),
  ref: Type.Optional(RefSchema)
}, { additionalProperties: false })
export const UnsubscribeFrameSchema = Type.Object({
  type: Type.Literal('unsubscribe'),
  channel: Type.String(),
  ref: Type.Optional(RefSchema)
}, { additionalProperties: false })
export const PingFrameSchema = Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false })
export const RefreshFrameSchema = Type.Object({
  type: Type.Literal('refresh'),
  token: Type.String({ minLength: 1, maxLength: 8192 })
}, { additionalProperties: false })
export const ClientFrameSchema = Type.Union([PublishFrameSchema, SubscribeFrameSchema, UnsubscribeFrameSchema, PingFrameSchema, RefreshFrameSchema])
export type PublishFrame = Static<typeof PublishFrameSchema>
export type SubscribeFrame = Static<typeof SubscribeFrameSchema>
export type UnsubscribeFrame = Static<typeof UnsubscribeFrameSchema>
export type RefreshFrame = Static<typeof RefreshFrameSchema>
export type ClientFrame = Static<typeof ClientFrameSchema>

// server → client
export const ReadyFrameSchema = Type.Object({
  type: Type.Literal('ready'),
  channel: Type.Optional(Type.String({ description: 'The path channel; absent on `/ws` and `/`' })),
  connectionId: Type.String(),
  userId: Type.String(),
  expiresAt: Type.Union([Type.Integer(), Type.Null()], { description: 'Token `exp` in seconds; null for tokens without one' }),
  recovered: Type.Optional(Type.Boolean()),
  data: Type.Optional(Type.Unknown({ description: 'What the backend\'s `connect` answer (or an onConnect hook) gave for this socket' }))
})
export const MessageFrameSchema = Type.Object({
  type: Type.Literal('message'),
  channel: Type.String(),
  id: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  data: DataSchema,
  ts: Type.Integer()
})
export const DirectFrameSchema = Type.Object({
  type: Type.Literal('direct'),
  id: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  data: DataSchema,
  ts: Type.Integer()
})
export const AckFrameSchema = Type.Object({
  type: Type.Literal('ack'),
  ref: RefSchema,
  id: Type.Optional(Type.String({ description: 'The message id; absent when the backend dropped the message (`skip`)' }))
})
export const PresenceFrameSchema = Type.Object({
  type: Type.Literal('presence'),
  channel: Type.String(),
  event: Type.Union([Type.Literal('join'), Type.Literal('leave')]),
  userId: Type.String()
})
export const RefreshedFrameSchema = Type.Object({ type: Type.Literal('refreshed'), expiresAt: Type.Union([Type.Integer(), Type.Null()]) })
export const PongFrameSchema = Type.Object({ type: Type.Literal('pong') })
export const ErrorFrameSchema = Type.Object({
  type: Type.Literal('error'),
  ref: Type.Optional(RefSchema),
  channel: Type.Optional(Type.String({ description: 'The channel a refused `subscribe` or `publish` named' })),
  code: ErrorCodeSchema,
  message: Type.String()
})
export const SubscribedFrameSchema = Type.Object({
  type: Type.Literal('subscribed'),
  channel: Type.String(),
  ref: Type.Optional(RefSchema),
  recovered: Type.Optional(Type.Boolean({ description: 'Present when `since` was given: true when every missed message follows, in order' })),
  by: Type.Union([Type.Literal('client'), Type.Literal('server')])
})
export const UnsubscribedFrameSchema = Type.Object({
  type: Type.Literal('unsubscribed'),
  channel: Type.String(),
  ref: Type.Optional(RefSchema),
  reason: Type.Union([Type.Literal('client'), Type.Literal('server'), Type.Literal('forbidden')])
})
export const ServerFrameSchema = Type.Union([
  ReadyFrameSchema, MessageFrameSchema, DirectFrameSchema, AckFrameSchema, PresenceFrameSchema,
  RefreshedFrameSchema, PongFrameSchema, ErrorFrameSchema, SubscribedFrameSchema, UnsubscribedFrameSchema
])
export type ReadyFrame = Static<typeof ReadyFrameSchema>
export type MessageFrame = Static<typeof MessageFrameSchema>
export type DirectFrame = Static<typeof DirectFrameSchema>
export type PresenceFrame = Static<typeof PresenceFrameSchema>
export type ErrorFrame = Static<typeof ErrorFrameSchema>
export type SubscribedFrame = Static<typeof SubscribedFrameSchema>
export type UnsubscribedFrame = Static<typeof UnsubscribedFrameSchema>
export type ServerFrame = Static<typeof ServerFrameSchema>

// one compiled check per frame type: dispatching on `type` first gives errors
// that name the field, not "expected union value"
const frameChecks = {
  publish: TypeCompiler.Compile(PublishFrameSchema),
  subscribe: TypeCompiler.Compile(SubscribeFrameSchema),
  unsubscribe: TypeCompiler.Compile(UnsubscribeFrameSchema),
  ping: TypeCompiler.Compile(PingFrameSchema),
  refresh: TypeCompiler.Compile(RefreshFrameSchema)
}

export type ParseResult = { ok: true, frame: ClientFrame } | { ok: false, message: string, ref?: string | number }

function refOf (value: unknown): string | number | undefined {
  if (value !== null && typeof value === 'object' && 'ref' in value) {
    const ref = (value as { ref: unknown }).ref
    // 1e400 parses to Infinity, which JSON would send back as null
    if (typeof ref === 'string' || (typeof ref === 'number' && Number.isFinite(ref))) return ref
  }
  return undefined
}

/** Parses and validates one text frame from a client. Never throws. */
export function parseClientFrame (text: string): ParseResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, message: 'invalid JSON' }
  }
  const type = value !== null && typeof value === 'object' ? (value as { type?: unknown }).type : undefined
  if (typeof type !== 'string' || !Object.hasOwn(frameChecks, type)) {
    return { ok: false, message: 'unknown frame type', ref: refOf(value) }
  }
  const check = frameChecks[type as keyof typeof frameChecks]
  if (check.Check(value)) return { ok: true, frame: value as ClientFrame }
  const ref = refOf(value)
  const first = check.Errors(value).First()
  const where = first?.path !== undefined && first.path !== '' ? first.path : '/'
  return { ok: false, message: `invalid ${type} frame at ${where}: ${first?.message ?? 'invalid'}`, ref }
}

/** How deep `data` may nest: deeper values cost recursion on every serialisation. */
export const MAX_DATA_DEPTH = 32

/**
 * True when a JSON value nests no deeper than `max` arrays/objects. The
 * recursion stops at `max`, so it cannot overflow the stack, and allocates nothing.
 */
export function withinDepth (value: unknown, max = MAX_DATA_DEPTH): boolean {
  if (value === null || typeof value !== 'object') return true
  if (max === 0) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!withinDepth(value[i], max - 1)) return false
    return true
  }
  for (const key in value) {
    if (!withinDepth((value as Record<string, unknown>)[key], max - 1)) return false
  }
  return true
}

// Frame builders for the fan-out path: each publish is turned into its text
// once, by concatenation, and that one string goes to every socket.
export function messageFrameText (channel: string, id: string, from: string | null, dataJson: string, ts: number): string {
  return MESSAGE_BEFORE_CHANNEL + channel + MESSAGE_BEFORE_ID + id + MESSAGE_BEFORE_FROM + (from === null ? 'null' : JSON.stringify(from)) +
    MESSAGE_BEFORE_DATA + dataJson + MESSAGE_BEFORE_TS + ts + MESSAGE_END
}

/** A stored `message` frame read back as a history entry (history reads are rare; the frame is what is kept). */
export function storedMessageOf (frame: string): { id: string, channel: string, from: string | null, data: unknown, ts: number } {
  const m = JSON.parse(frame) as MessageFrame
  return { id: m.id, channel: m.channel, from: m.from, data: m.data, ts: m.ts }
}

export function directFrameText (id: string, from: string | null, dataJson: string, ts: number): string {
  return `{"type":"direct","id":"${id}","from":${from === null ? 'null' : JSON.stringify(from)},"data":${dataJson},"ts":${ts}}`
}

export function readyFrameText (channel: string | null, connectionId: string, userId: string, expiresAt: number | null, recovered?: boolean, dataJson?: string): string {
  return `{"type":"ready"${channel === null ? '' : `,"channel":"${channel}"`},"connectionId":"${connectionId}","userId":${JSON.stringify(userId)},"expiresAt":${expiresAt ?? 'null'}${recovered === undefined ? '' : `,"recovered":${recovered}`}${dataJson === undefined ? '' : `,"data":${dataJson}`}}`
}

export function presenceFrameText (channel: string, event: 'join' | 'leave', userId: string): string {
  return `{"type":"presence","channel":"${channel}","event":"${event}","userId":${JSON.stringify(userId)}}`
}

const refText = (ref: string | number | undefined): string => ref === undefined ? '' : `,"ref":${JSON.stringify(ref)}`

export function subscribedFrameText (channel: string, by: 'client' | 'server', ref?: string | number, recovered?: boolean): string {
  return `{"type":"subscribed","channel":"${channel}"${refText(ref)}${recovered === undefined ? '' : `,"recovered":${recovered}`},"by":"${by}"}`
}

export function unsubscribedFrameText (channel: string, reason: 'client' | 'server' | 'forbidden', ref?: string | number): string {
  return `{"type":"unsubscribed","channel":"${channel}"${refText(ref)},"reason":"${reason}"}`
}
