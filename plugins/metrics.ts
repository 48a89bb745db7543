// Prometheus metrics, on a registry of this app's own (several apps in one
// process — tests, host apps — must not collide). The core counts in plain
// numbers (src/core/stats.ts); the collectors here read them at scrape time.
import fp from 'fastify-plugin'
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import { Stats } from '../src/core/stats.ts'

export class GatecastMetrics {
  readonly registry = new Registry()
  readonly stats: Stats

  constructor (stats = new Stats()) {
    this.stats = stats
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    // eslint-disable-next-line no-new
    new Counter({
      name: 'gatecast_upgrades_total',
      help: 'WebSocket upgrades: status 101 accepted, else refused with that HTTP status and code',
      labelNames: ['status', 'code'],
      registers,
      collect () {
        this.reset()
        if (stats.upgradesAccepted > 0) this.inc({ status: '101', code: 'ok' }, stats.upgradesAccepted)
        for (const [key, n] of stats.refusals) {
          const sp = key.indexOf(' ')
          this.inc({ status: key.slice(0, sp), code: key.slice(sp + 1) }, n)
        }
      }
    })
    // eslint-disable-next-line no-new
    new Counter({
      name: 'gatecast_socket_closes_total',
      help: 'Closed sockets by close code',
      labelNames: ['code'],
      registers,
      collect () {
        this.reset()
        for (const [code, n] of stats.closes) this.inc({ code }, n)
      }
    })
    // eslint-disable-next-line no-new
    new Counter({
      name: 'gatecast_messages_published_total',
      help: 'Messages published, by source (client or api)',
      labelNames: ['source'],
      registers,
      collect () {
        this.reset()
        this.inc({ source: 'client' }, stats.publishedByClient)
        this.inc({ source: 'api' }, stats.publishedByApi)
      }
    })
    // the hot histograms read like prom-client's own (name, type, get, reset)
    for (const h of [stats.fanout, stats.handshake, stats.delivery]) this.registry.registerMetric(h as unknown as Metric)
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_in_total', help: 'Frames received from clients', registers, collect () { this.reset(); this.inc(stats.framesIn) } })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_out_total', help: 'Frames sent to clients', registers, collect () { this.reset(); this.inc(stats.framesOut) } })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'gatecast_sockets_open',
      help: 'Open WebSockets on this node by channel namespace ("" for none)',
      labelNames: ['namespace'],
      registers,
      collect () {
        this.reset()
        for (const [ns, n] of stats.sources?.socketsByNamespace() ?? []) this.set({ namespace: ns }, n)
      }
    })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_engine_errors_total', help: 'Engine (Redis) errors', registers, collect () { this.reset(); this.inc(stats.sources?.engine().errors ?? 0) } })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'gatecast_engine_rtt_seconds',
      help: 'Last measured engine (Redis) round trip',
      registers,
      collect () {
        const ms = stats.sources?.engine().rttMs
        if (ms !== null && ms !== undefined) this.set(ms / 1000)
      }
    })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatecastMetrics
  }
}

export default fp(async (app) => {
  app.decorate('metrics', new GatecastMetrics())
}, { name: 'gatecast-metrics', fastify: '5.x' })
