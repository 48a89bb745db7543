// The server API for backends (GatewayWorker's Gateway:: over HTTP), cluster-wide.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ChannelNameSchema } from '../../src/protocol/frames.ts'
import { CONNECTION_ID } from '../../src/core/gateway.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import {
  ChannelSummarySchema, ConnectionInfoSchema, DataBodySchema, errorRef, PresenceEntrySchema, StoredMessageSchema, UserInfoSchema
} from '../../src/protocol/rest.ts'

const ChannelParams = Type.Object({ channel: ChannelNameSchema })
const UserParams = Type.Object({ userId: Type.String({ minLength: 1, maxLength: 256 }) })
const security: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearer: [] }]
// 429: an IP that failed credentials too often is refused for a while
const denied = { 400: errorRef, 401: errorRef, 403: errorRef, 429: errorRef }
const Accepted = Type.Object({ status: Type.Literal('accepted') })
const UserChannelParams = Type.Object({ userId: UserParams.properties.userId, channel: ChannelNameSchema })
const ConnectionParams = Type.Object({ connectionId: Type.String({ pattern: CONNECTION_ID.source, description: 'The `connectionId` of a `ready` frame' }) })
const ConnectionChannelParams = Type.Object({ connectionId: ConnectionParams.properties.connectionId, channel: ChannelNameSchema })
// 404: no node has the connection; 503: the node that has it did not answer
const oneConnection = { ...denied, 404: errorRef, 503: errorRef }

const noConnection = (): GatecastError => new GatecastError(404, 'connection_not_found', 'no node has this connection')
const accepted = { status: 'accepted' as const }

const api: FastifyPluginAsyncTypebox = async (app) => {
  // credentials before the body is read: anonymous clients never cost a parse
  app.addHook('onRequest', app.authenticateAdmin)

  app.post('/channels/:channel/messages', {
    schema: {
      tags: ['api'],
      summary: 'Publish to a channel as the server (`from: null`)',
      security,
      params: ChannelParams,
      body: DataBodySchema,
      response: { 201: Type.Object({ id: Type.String() }), ...denied }
    }
  }, async (req, reply) => reply.code(201).send(await app.gatecast.publish(req.params.channel, req.body.data)))

  app.get('/channels/:channel/messages', {
    schema: {
      tags: ['api'],
      summary: 'Channel history, oldest first; with `since`, only newer messages (`recovered: false` when history no longer reaches back)',
      security,
      params: ChannelParams,
      querystring: Type.Object({
        since: Type.Optional(Type.String()),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 }))
      }),
      response: { 200: Type.Object({ messages: Type.Array(StoredMessageSchema), recovered: Type.Boolean() }), ...denied }
    }
  }, async (req) => app.gatecast.history(req.params.channel, { since: req.query.since, limit: req.query.limit }))

  app.get('/channels', {
    schema: {
      tags: ['api'],
      summary: 'Channels with open sockets, cluster-wide',
      security,
      response: { 200: Type.Object({ channels: Type.Array(ChannelSummarySchema) }), 401: errorRef, 403: errorRef, 429: errorRef }
    }
  }, async () => ({ channels: await app.gatecast.channels() }))

  app.get('/channels/:channel/presence', {
    schema: {
      tags: ['api'],
      summary: 'Users on a channel and their socket counts',
      security,
      params: ChannelParams,
      response: { 200: Type.Object({ channel: Type.String(), users: Type.Array(PresenceEntrySchema) }), ...denied }
    }
  }, async (req) => app.gatecast.presence(req.params.channel))

  app.post('/broadcast', {
    schema: {
      tags: ['api'],
      summary: 'A `direct` frame to every connected socket',
      security,
      body: DataBodySchema,
      response: { 202: Accepted, ...denied }
    }
  }, async (req, reply) => {
    await app.gatecast.broadcast(req.body.data)
    return reply.code(202).send({ status: 'accepted' as const })
  })

  app.post('/users/:userId/messages', {
    schema: {
      tags: ['api'],
      summary: 'A `direct` frame to every socket of a user',
      security,
      params: UserParams,
      body: DataBodySchema,
      response: { 202: Accepted, ...denied }
    }
  }, async (req, reply) => {
    await app.gatecast.sendToUser(req.params.userId, req.body.data)
    return reply.code(202).send({ status: 'accepted' as const })
  })

  app.get('/users/:userId', {
    schema: {
      tags: ['api'],
      summary: 'Whether a user is online, with socket count and channels',
      security,
      params: UserParams,
      response: { 200: UserInfoSchema, ...denied }
    }
  }, async (req) => app.gatecast.userStatus(req.params.userId))

  app.delete('/users/:userId/connections', {
    schema: {
      tags: ['api'],
      summary: 'Close every socket of a user with 4403',
      security,
      params: UserParams,
      response: { 202: Accepted, ...denied }
    }
  }, async (req, reply) => {
    await app.gatecast.disconnectUser(req.params.userId)
    return reply.code(202).send({ status: 'accepted' as const })
  })

  app.post('/users/:userId/channels/:channel', {
    schema: {
      tags: ['api'],
      summary: 'Every socket of a user, on every node, subscribes to the channel (GatewayWorker\'s joinGroup by uid); `subscribed` `by: "server"`. Client-side permission checks do not apply; the per-socket channel limit does',
      security,
      params: UserChannelParams,
      response: { 202: Accepted, ...denied }
    }
  }, async (req, reply) => {
    await app.gatecast.subscribeUser(req.params.userId, req.params.channel)
    return reply.code(202).send(accepted)
  })

  app.delete('/users/:userId/channels/:channel', {
    schema: {
      tags: ['api'],
      summary: 'Every socket of a user leaves the channel; `unsubscribed` `reason: "server"`',
      security,
      params: UserChannelParams,
      response: { 202: Accepted, ...denied }
    }
  }, async (req, reply) => {
    await app.gatecast.unsubscribeUser(req.params.userId, req.params.channel)
    return reply.code(202).send(accepted)
  })

  app.get('/connections/:connectionId', {
    schema: {
      tags: ['api'],
      summary: 'One socket, on whichever node holds it: its user, channels and opening time',
      security,
      params: ConnectionParams,
      response: { 200: ConnectionInfoSchema, ...oneConnection }
    }
  }, async (req) => {
    const info = await app.gatecast.connection(req.params.connectionId)
    if (info === null) throw noConnection()
    return info
  })

  app.post('/connections/:connectionId/channels/:channel', {
    schema: {
      tags: ['api'],
      summary: 'That one socket subscribes to the channel (joinGroup by client id); `subscribed` `by: "server"`',
      security,
      params: ConnectionChannelParams,
      response: { 202: Accepted, ...oneConnection }
    }
  }, async (req, reply) => {
    if (!await app.gatecast.subscribeConnection(req.params.connectionId, req.params.channel)) throw noConnection()
    return reply.code(202).send(accepted)
  })

  app.delete('/connections/:connectionId/channels/:channel', {
    schema: {
      tags: ['api'],
      summary: 'That one socket leaves the channel; `unsubscribed` `reason: "server"`',
      security,
      params: ConnectionChannelParams,
      response: { 202: Accepted, ...oneConnection }
    }
  }, async (req, reply) => {
    if (!await app.gatecast.unsubscribeConnection(req.params.connectionId, req.params.channel)) throw noConnection()
    return reply.code(202).send(accepted)
  })

  app.post('/connections/:connectionId/messages', {
    schema: {
      tags: ['api'],
      summary: 'A `direct` frame to that one socket (sendToClient)',
      security,
      params: ConnectionParams,
      body: DataBodySchema,
      response: { 202: Accepted, ...oneConnection }
    }
  }, async (req, reply) => {
    if (!await app.gatecast.sendToConnection(req.params.connectionId, req.body.data)) throw noConnection()
    return reply.code(202).send(accepted)
  })

  app.delete('/connections/:connectionId', {
    schema: {
      tags: ['api'],
      summary: 'Close that one socket with 4403 (closeClient)',
      security,
      params: ConnectionParams,
      response: { 202: Accepted, ...oneConnection }
    }
  }, async (req, reply) => {
    if (!await app.gatecast.disconnectConnection(req.params.connectionId)) throw noConnection()
    return reply.code(202).send(accepted)
  })
}

export default api
