// The application backend (BACKEND_URL): socket events POSTed to it, its answers
// deciding connects, subscribes and publishes after the in-process hooks.
import fp from 'fastify-plugin'
import { HttpBackend } from '../src/backend/http-backend.ts'

export default fp(async (app) => {
  const { backendUrl, backendEvents, backendSecret, backendTimeout, backendMaxInFlight } = app.config
  if (backendUrl === undefined) return
  // production refuses this at boot (config): a forged call could subscribe or silence anyone
  if (backendSecret === undefined) app.log.warn('BACKEND_URL is set without BACKEND_SECRET: backend calls are unsigned; production requires a secret')
  const backend = new HttpBackend({
    url: backendUrl,
    events: backendEvents,
    secret: backendSecret,
    timeoutMs: backendTimeout,
    maxInFlight: backendMaxInFlight,
    log: app.log.child({ component: 'backend' }),
    observe: (event, result, seconds) => { app.metrics.stats.backendCalled(event, result, seconds) }
  })
  app.metrics.stats.backendInFlight = () => backend.inFlight
  app.gatecast.useBackend(backend)
  app.log.info({ backend: new URL(backendUrl).origin, events: backendEvents }, 'application backend on')
  // onClose comes after the core's preClose: the close events of the sockets it closed are in flight
  app.addHook('onClose', async () => { await backend.stop() })
}, { name: 'gatecast-backend', dependencies: ['gatecast-config', 'gatecast-core', 'gatecast-metrics'], fastify: '5.x' })
