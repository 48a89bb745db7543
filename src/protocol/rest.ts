// TypeBox schemas shared by routes and the OpenAPI document.
import { Type, type Static } from '@sinclair/typebox'

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.String({ description: 'Stable machine-readable reason, e.g. token_expired' })
}, { $id: 'Error', description: 'Every 4xx/5xx, REST and refused upgrades alike' })
export type ErrorBody = Static<typeof ErrorSchema>

export const errorRef = Type.Ref('Error')

export const TokenPairSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds' }),
  refresh_token: Type.String(),
  refresh_expires_in: Type.Integer({ description: 'seconds' })
})
export type TokenPair = Static<typeof TokenPairSchema>

export const StoredMessageSchema = Type.Object({
  id: Type.String(),
  channel: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
  ts: Type.Integer({ description: 'milliseconds since epoch' })
})
export type StoredMessageBody = Static<typeof StoredMessageSchema>

export const PresenceEntrySchema = Type.Object({ userId: Type.String(), connections: Type.Integer() })
export const ChannelSummarySchema = Type.Object({ name: Type.String(), connections: Type.Integer(), users: Type.Integer() })
export const UserInfoSchema = Type.Object({
  userId: Type.String(),
  online: Type.Boolean(),
  connections: Type.Integer(),
  channels: Type.Array(Type.String())
})
export const DataBodySchema = Type.Object({ data: Type.Unknown({ description: 'Any JSON value' }) }, { required: ['data'] })
export const ConnectionInfoSchema = Type.Object({
  connectionId: Type.String(),
  userId: Type.String(),
  channels: Type.Array(Type.String(), { description: 'the channels it is subscribed to' }),
  openedAt: Type.Integer({ description: 'milliseconds since epoch' })
})
