// Prometheus metrics, on a registry of this app's own (several apps in one
// process — tests, host apps — must not collide). The core counts in plain
// numbers (src/core/stats.ts); the collectors here read them at scrape time.
import fp from 'fastify-plugin'
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import { Stats, type HotHistogram } from '../src/core/stats.ts'

interface HistogramValue {
  labels: { le?: number | string }
  value: number
  metricName: string
}

/**
 * A core HotHistogram as prom-client's registry reads a metric (name, type,
 * get(), reset()), in prom-client's own format: cumulative `_bucket` lines,
 * `+Inf`, `_sum`, `_count`.
 */
export class PromHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #h: HotHistogram

  constructor (h: HotHistogram) {
    this.#h = h
  }

  get name (): string { return this.#h.name }
  get help (): string { return this.#h.help }

  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: HistogramValue[] }> {
    const { bounds, counts, sum, count } = this.#h.snapshot()
    const name = this.name
    const values: HistogramValue[] = []
    let cumulative = 0
    for (let i = 0; i <= bounds.length; i++) {
      cumulative += counts[i]
      values.push({ labels: { le: i < bounds.length ? bounds[i] : '+Inf' }, value: cumulative, metricName: `${name}_bucket` })
    }
    values.push({ labels: {}, value: sum, metricName: `${name}_sum` })
    values.push({ labels: {}, value: count, metricName: `${name}_count` })
    return { name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#h.reset()
  }
}

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
    // the registry needs only name, type, get() and reset(): duck-typed, as prom-client reads it
    for (const h of [stats.fanout, stats.handshake, stats.delivery, stats.backendCall]) this.registry.registerMetric(new PromHistogram(h) as unknown as Metric)
    // eslint-disable-next-line no-new
    new Counter({
      name: 'gatecast_backend_calls_total',
      help: 'Calls to the application backend by event and result: the status class, timeout, error (no answer) or busy (not sent)',
      labelNames: ['event', 'result'],
      registers,
      collect () {
        this.reset()
        for (const [key, n] of stats.backendCalls) {
          const sp = key.indexOf(' ')
          this.inc({ event: key.slice(0, sp), result: key.slice(sp + 1) }, n)
        }
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'gatecast_backend_calls_in_flight', help: 'Calls to the application backend open now', registers, collect () { this.set(stats.backendInFlight?.() ?? 0) } })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_in_total', help: 'Frames received from clients', registers, collect () { this.reset(); this.inc(stats.framesIn) } })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_out_total', help: 'Frames sent to clients', registers, collect () { this.reset(); this.inc(stats.framesOut) } })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'gatecast_sockets_open', help: 'Open WebSockets on this node', registers, collect () { this.set(stats.sources?.sockets() ?? 0) } })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'gatecast_subscriptions',
      help: 'Channel subscriptions of the sockets on this node by channel namespace ("" for none)',
      labelNames: ['namespace'],
      registers,
      collect () {
        this.reset()
        for (const [ns, n] of stats.sources?.subscriptionsByNamespace() ?? []) this.set({ namespace: ns }, n)
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
