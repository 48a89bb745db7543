// Prometheus metrics, on a registry of this app's own (several apps in one
// process — tests, host apps — must not collide). What the per-message and
// per-connection paths count is kept in plain numbers and arrays, bumped
// there and read at scrape time: prom-client's inc() and observe() hash labels
// and allocate on every call.
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client'

interface HistogramValue {
  labels: { le?: number | string }
  value: number
  metricName: string
}

/**
 * A label-less Prometheus histogram whose observe() is a bucket search and
 * three additions. The registry reads it through get(), in prom-client's
 * format (cumulative `_bucket` lines, `+Inf`, `_sum`, `_count`).
 */
export class HotHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  // per bucket, not cumulative; the last one is +Inf
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor (o: { name: string, help: string, buckets: readonly number[], registry: Registry }) {
    this.name = o.name
    this.help = o.help
    this.#bounds = [...o.buckets].sort((a, b) => a - b)
    this.#counts = new Float64Array(this.#bounds.length + 1)
    // the registry needs only name, type, get() and reset(): duck-typed, as prom-client reads it
    o.registry.registerMetric(this as unknown as Metric)
  }

  observe (value: number): void {
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    this.#counts[i]++
    this.#sum += value
    this.#count++
  }

  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: HistogramValue[] }> {
    const values: HistogramValue[] = []
    let cumulative = 0
    for (let i = 0; i <= this.#bounds.length; i++) {
      cumulative += this.#counts[i]
      values.push({ labels: { le: i < this.#bounds.length ? this.#bounds[i] : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` })
    }
    values.push({ labels: {}, value: this.#sum, metricName: `${this.name}_sum` })
    values.push({ labels: {}, value: this.#count, metricName: `${this.name}_count` })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}

export interface MetricSources {
  socketsByNamespace: () => Map<string, number>
  engine: () => { errors: number, rttMs: number | null }
}

export class GatecastMetrics {
  readonly registry = new Registry()
  readonly upgrades: Counter<'status' | 'code'>
  readonly closes: Counter<'code'>
  readonly fanout: HotHistogram
  readonly handshake: HotHistogram
  readonly delivery: HotHistogram
  framesIn = 0
  framesOut = 0
  publishedByClient = 0
  publishedByApi = 0
  /** upgrades answered 101 (refusals go to `upgrades` with their status and code) */
  upgradesAccepted = 0
  #sources: MetricSources | null = null

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const self = this
    this.upgrades = new Counter({
      name: 'gatecast_upgrades_total',
      help: 'WebSocket upgrades: status 101 accepted, else refused with that HTTP status and code',
      labelNames: ['status', 'code'],
      registers,
      collect () {
        if (self.upgradesAccepted === 0) return
        this.remove('101', 'ok')
        this.inc({ status: '101', code: 'ok' }, self.upgradesAccepted)
      }
    })
    this.closes = new Counter({ name: 'gatecast_socket_closes_total', help: 'Closed sockets by close code', labelNames: ['code'], registers })
    // eslint-disable-next-line no-new
    new Counter({
      name: 'gatecast_messages_published_total',
      help: 'Messages published, by source (client or api)',
      labelNames: ['source'],
      registers,
      collect () {
        this.reset()
        this.inc({ source: 'client' }, self.publishedByClient)
        this.inc({ source: 'api' }, self.publishedByApi)
      }
    })
    const registry = this.registry
    this.fanout = new HotHistogram({ name: 'gatecast_fanout_sockets', help: 'Local sockets one message was delivered to', buckets: [0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000], registry })
    this.handshake = new HotHistogram({ name: 'gatecast_handshake_seconds', help: 'From upgrade request to `ready` sent', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registry })
    this.delivery = new HotHistogram({ name: 'gatecast_publish_delivery_seconds', help: 'From publish to fan-out on this node (includes the engine round trip)', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registry })
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
