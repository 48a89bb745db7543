// Prometheus metrics, on a registry of this app's own (several apps in one
// process — tests, host apps — must not collide). Per-frame counts are plain
// numbers bumped on the hot path and read at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface MetricSources {
  socketsByNamespace: () => Map<string, number>
  engine: () => { errors: number, rttMs: number | null }
}

export class GatecastMetrics {
  readonly registry = new Registry()
  readonly upgrades: Counter<'status' | 'code'>
  readonly closes: Counter<'code'>
  readonly published: Counter<'source'>
  readonly fanout: Histogram
  readonly handshake: Histogram
  readonly delivery: Histogram
  framesIn = 0
  framesOut = 0
  // bound once: inc() on a child skips hashing the labels on every message
  readonly publishedByClient: { inc: () => void }
  readonly publishedByApi: { inc: () => void }
  readonly upgradesAccepted: { inc: () => void }
  #sources: MetricSources | null = null

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.upgrades = new Counter({ name: 'gatecast_upgrades_total', help: 'WebSocket upgrades: status 101 accepted, else refused with that HTTP status and code', labelNames: ['status', 'code'], registers })
    this.closes = new Counter({ name: 'gatecast_socket_closes_total', help: 'Closed sockets by close code', labelNames: ['code'], registers })
    this.published = new Counter({ name: 'gatecast_messages_published_total', help: 'Messages published, by source (client or api)', labelNames: ['source'], registers })
    this.publishedByClient = this.published.labels('client')
    this.publishedByApi = this.published.labels('api')
    this.upgradesAccepted = this.upgrades.labels('101', 'ok')
    this.fanout = new Histogram({ name: 'gatecast_fanout_sockets', help: 'Local sockets one message was delivered to', buckets: [0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000], registers })
    this.handshake = new Histogram({ name: 'gatecast_handshake_seconds', help: 'From upgrade request to `ready` sent', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers })
    this.delivery = new Histogram({ name: 'gatecast_publish_delivery_seconds', help: 'From publish to fan-out on this node (includes the engine round trip)', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers })
    const self = this
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_in_total', help: 'Frames received from clients', registers, collect () { this.reset(); this.inc(self.framesIn) } })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_frames_out_total', help: 'Frames sent to clients', registers, collect () { this.reset(); this.inc(self.framesOut) } })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'gatecast_sockets_open',
      help: 'Open WebSockets on this node by channel namespace ("" for none)',
      labelNames: ['namespace'],
      registers,
      collect () {
        this.reset()
        for (const [ns, n] of self.#sources?.socketsByNamespace() ?? []) this.set({ namespace: ns }, n)
      }
    })
    // eslint-disable-next-line no-new
    new Counter({ name: 'gatecast_engine_errors_total', help: 'Engine (Redis) errors', registers, collect () { this.reset(); this.inc(self.#sources?.engine().errors ?? 0) } })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'gatecast_engine_rtt_seconds',
      help: 'Last measured engine (Redis) round trip',
      registers,
      collect () {
        const ms = self.#sources?.engine().rttMs
        if (ms !== null && ms !== undefined) this.set(ms / 1000)
      }
    })
  }

  attach (sources: MetricSources): void {
    this.#sources = sources
  }
}
