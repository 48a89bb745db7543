// Prometheus metrics on a registry of this app's own, so several apps in one
// process (tests, host apps) do not collide.
import fp from 'fastify-plugin'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

export interface GatecastMetrics {
  registry: Registry
  upgrades: Counter<'status'>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatecastMetrics
  }
}

export default fp(async (app) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const upgrades = new Counter({ name: 'gatecast_upgrades_total', help: 'WebSocket upgrade attempts by HTTP status', labelNames: ['status'], registers: [registry] })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'gatecast_sockets_open',
    help: 'Open WebSockets on this node',
    registers: [registry],
    collect () { this.set(app.gatecast.hub.size) }
  })
  app.decorate('metrics', { registry, upgrades })
}, { name: 'gatecast-metrics', dependencies: ['gatecast-core'], fastify: '5.x' })
