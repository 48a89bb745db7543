// Load shedding: while the event loop lags, new upgrades and logins get 503 with
// Retry-After; everything else, open sockets above all, keeps being served.
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { GatecastError } from '../src/protocol/errors.ts'

const RETRY_AFTER_SECONDS = 5
const SAMPLE_INTERVAL_MS = 250

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
    sampleInterval: SAMPLE_INTERVAL_MS,
    // measured for everyone, refused only where shedLoad() is called
    pressureHandler: () => undefined
  })
  // start-up work (module loading, schema compilation) lags the loop too: it is
  // not load, so the first samples after listen do not count
  let armedAt = Infinity
  app.addHook('onReady', async () => { armedAt = Date.now() + 2 * SAMPLE_INTERVAL_MS })
  app.decorate('shedLoad', () => {
    // Infinity: no sample in the last interval; the next one shows the real lag
    const lag = app.memoryUsage().eventLoopDelay
    if (Date.now() >= armedAt && Number.isFinite(lag) && lag > maxEventLoopDelay) {
      throw new GatecastError(503, 'overloaded', 'server overloaded, retry later', { 'retry-after': String(RETRY_AFTER_SECONDS) })
    }
  })
}, { name: 'gatecast-under-pressure', dependencies: ['gatecast-config'], fastify: '5.x' })
