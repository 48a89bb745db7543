import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { Admission } from '../src/core/gateway.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** an upgrade admitted before the handshake, until its socket takes it over */
    admission: Admission | null
  }
}

export default fp(async (app) => {
  // every upgrade route (routes/ws, and `/` beside the demo page) carries its admission here
  app.decorateRequest('admission', null)
  await app.register(websocket, {
    options: {
      maxPayload: app.config.wsMaxPayload,
      // the hub keeps its own registry
      clientTracking: false,
      perMessageDeflate: false,
      // browsers send `gatecast, bearer.<jwt>` and require one offered protocol back
      handleProtocols: (protocols) => protocols.has('gatecast') ? 'gatecast' : false
    },
    // the gatecast plugin closes sockets itself, in batches, with 1001
    preClose (done) {
      this.websocketServer.close()
      done()
    },
    // ws already answers protocol errors (1009 too large, 1007 bad UTF-8) with a close frame;
    // terminating here would drop that frame
    errorHandler (err, _socket, request) {
      request.log.debug({ err }, 'websocket error')
    }
  })
}, { name: 'gatecast-websocket', dependencies: ['gatecast-config', 'gatecast-core'], fastify: '5.x' })
