// The admin console's answers as TypeBox schemas: the snapshot route's
// response (and its OpenAPI entry), and what the feed's events carry. They
// mirror the types of src/core/admin-console.ts; the routes' return types are
// checked against them at compile time, the feed's events by the tests.
import { Type } from '@sinclair/typebox'
import { ChannelNameSchema } from '../../src/protocol/frames.ts'
import { ConnectionInfoSchema, PresenceEntrySchema } from '../../src/protocol/rest.ts'

const Ms = Type.Integer({ description: 'milliseconds since epoch' })
const PerSecond = Type.Number({ minimum: 0, description: 'per second' })
const Bytes = Type.Integer({ minimum: 0, description: 'bytes' })

export const NodeStatsSchema = Type.Object({
  host: Type.String(),
  pid: Type.Integer(),
  startedAt: Ms,
  at: Ms,
  connections: Type.Integer({ description: 'open sockets' }),
  users: Type.Integer({ description: 'users with a socket on the node' }),
  channels: Type.Integer({ description: 'channels with a subscription on the node' }),
  subscriptions: Type.Integer(),
  published: Type.Number({ minimum: 0, description: 'messages per second published through the node (its clients and its server API calls)' }),
  delivered: Type.Number({ minimum: 0, description: 'messages per second the node received for its local subscribers' }),
  memory: Type.Object({ rss: Bytes, heapUsed: Bytes, heapTotal: Bytes }),
  eventLoop: Type.Object({ meanMs: Type.Number(), p99Ms: Type.Number(), maxMs: Type.Number() }, { description: 'event-loop delay over the last second' })
})

export const NodeViewSchema = Type.Object({
  nodeId: Type.String(),
  self: Type.Boolean({ description: 'the node that answered' }),
  at: Ms,
  stats: Type.Union([NodeStatsSchema, Type.Null()], { description: 'null: the node is live but reports nothing (its console is off)' })
})

export const ChannelViewSchema = Type.Object({
  name: Type.String(),
  connections: Type.Integer(),
  users: Type.Integer(),
  rate: Type.Number({ minimum: 0, description: 'messages per second: the largest count of any node with a subscriber on the channel' })
})

export const OverviewSchema = Type.Object({
  at: Ms,
  totals: Type.Object({
    nodes: Type.Integer(),
    connections: Type.Integer(),
    published: Type.Number({ minimum: 0, description: 'messages published per second, cluster-wide' }),
    channels: Type.Integer()
  }),
  nodes: Type.Array(NodeViewSchema),
  channels: Type.Object({ total: Type.Integer(), list: Type.Array(ChannelViewSchema, { description: 'busiest first, then fullest; at most 200' }) }),
  users: Type.Object({
    complete: Type.Boolean({ description: 'false when some node has more users than its sample' }),
    list: Type.Array(Type.Object({ userId: Type.String(), connections: Type.Integer() }))
  })
})

export const HistoryLineSchema = Type.Object({
  id: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  ts: Ms,
  text: Type.String({ description: 'the data as JSON, cut to 500 characters' }),
  truncated: Type.Boolean()
})

export const ChannelDetailSchema = Type.Object({
  name: Type.String(),
  connections: Type.Integer(),
  users: Type.Integer(),
  rate: PerSecond,
  presence: Type.Array(PresenceEntrySchema),
  history: Type.Array(HistoryLineSchema, { description: 'the last 20 messages, oldest first' })
})

export const SocketViewSchema = Type.Composite([ConnectionInfoSchema, Type.Object({ nodeId: Type.String() })])

export const UserDetailSchema = Type.Object({
  userId: Type.String(),
  online: Type.Boolean(),
  connections: Type.Integer(),
  channels: Type.Array(Type.String()),
  sockets: Type.Array(SocketViewSchema, { description: 'the sockets found on the nodes that answered within 800 ms, oldest first' })
})

export const SnapshotSchema = Type.Object({
  overview: OverviewSchema,
  channel: Type.Union([ChannelDetailSchema, Type.Null()]),
  user: Type.Union([UserDetailSchema, Type.Null()])
})

/** the feed's `series` event: [second since the epoch, messages published in it, sockets open] */
export const SeriesSchema = Type.Object({
  points: Type.Array(Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }))
})

export const SessionSchema = Type.Object({
  via: Type.Union([Type.Literal('token'), Type.Literal('api_key')]),
  userId: Type.Union([Type.String(), Type.Null()], { description: 'null with the API key' }),
  expiresAt: Type.Union([Type.Integer(), Type.Null()], { description: 'the token\'s exp (seconds); null with the API key' }),
  nodeId: Type.String({ description: 'the node that answered' })
})

export const FocusQuerySchema = {
  channel: Type.Optional(Type.String({ pattern: ChannelNameSchema.pattern, description: 'a channel to show in detail: presence and last messages' })),
  user: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'a user to show in detail: every socket, on every node' }))
}
