// Load shedding: while the event loop lags, new upgrades and logins get 503 with
// Retry-After; everything else, open sockets above all, keeps being served.
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { GatecastError } from '../src/errors.ts'

const RETRY_AFTER_SECONDS = 5

declare module 'fastify' {
  interface FastifyInstance {
    /** throws 503 `overloaded` while the node is under pressure */
    shedLoad: () => void
  }
}

export default fp(async (app) => {
  const maxEventLoopDelay = app.config.maxEventLoopDelay
  if (maxEventLoopDelay === 0) {
    app.decorate('shedLoad', () => {})
    return
  }
  await app.register(underPressure, {
    maxEventLoopDelay,
    sampleInterval: 250,
    // measured for everyone, refused only where shedLoad() is called
    pressureHandler: () => undefined
  })
  app.decorate('shedLoad', () => {
    if (app.isUnderPressure()) {
      throw new GatecastError(503, 'overloaded', 'server overloaded, retry later', { 'retry-after': String(RETRY_AFTER_SECONDS) })
    }
  })
}, { name: 'gatecast-under-pressure', dependencies: ['gatecast-config'], fastify: '5.x' })
