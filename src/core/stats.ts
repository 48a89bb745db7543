// What the core counts, in plain numbers and arrays bumped on the per-message
// and per-connection paths and read at scrape time by the metrics plugin
// (plugins/metrics.ts, the only place that knows Prometheus): prom-client's
// inc() and observe() hash labels and allocate on every call.
import type { ChannelCounter } from './channel-counter.ts'

/** What a histogram holds: per-bucket counts (not cumulative; the last bucket is +Inf), sum and count. */
export interface HistogramSnapshot {
  bounds: readonly number[]
  counts: readonly number[]
  sum: number
  count: number
}

/**
 * A label-less histogram whose observe() is a bucket search and three
 * additions; plugins/metrics.ts shows it to Prometheus.
 */
export class HotHistogram {
  readonly name: string
  readonly help: string
  readonly #bounds: readonly number[]
  // per bucket, not cumulative; the last one is +Inf
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor (o: { name: string, help: string, buckets: readonly number[] }) {
    this.name = o.name
    this.help = o.help
    this.#bounds = [...o.buckets].sort((a, b) => a - b)
    this.#counts = new Float64Array(this.#bounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    this.#counts[i]++
    this.#sum += value
    this.#count++
  }

  snapshot (): HistogramSnapshot {
    return { bounds: this.#bounds, counts: [...this.#counts], sum: this.#sum, count: this.#count }
  }

  reset (): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}

export interface StatsSources {
  sockets: () => number
  subscriptionsByNamespace: () => Map<string, number>
  engine: () => { errors: number, rttMs: number | null }
}

export class Stats {
  framesIn = 0
  framesOut = 0
  publishedByClient = 0
  publishedByApi = 0
  /** upgrades answered 101 (refusals are counted by status and code) */
  upgradesAccepted = 0
  /** refused upgrades by "status code", e.g. "401 token_missing" */
  readonly refusals = new Map<string, number>()
  /** closed sockets by close code */
  readonly closes = new Map<number, number>()
  readonly fanout = new HotHistogram({ name: 'gatecast_fanout_sockets', help: 'Local sockets one message was delivered to', buckets: [0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000] })
  readonly handshake = new HotHistogram({ name: 'gatecast_handshake_seconds', help: 'From upgrade request to `ready` sent', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] })
  readonly delivery = new HotHistogram({ name: 'gatecast_publish_delivery_seconds', help: 'From publish to fan-out on this node (includes the engine round trip)', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] })
  sources: StatsSources | null = null
  /** messages per channel received for local subscribers; null (nothing counted) unless the admin console is on */
  channelMessages: ChannelCounter | null = null
  /** calls to the application backend by "event result", e.g. "publish 2xx", "connect timeout" */
  readonly backendCalls = new Map<string, number>()
  readonly backendCall = new HotHistogram({ name: 'gatecast_backend_call_seconds', help: 'One call to the application backend (BACKEND_URL), answered or not', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] })
  /** calls to the backend open right now; null without a backend */
  backendInFlight: (() => number) | null = null

  /** `seconds` null: the call was not sent */
  backendCalled (event: string, result: string, seconds: number | null): void {
    const key = `${event} ${result}`
    this.backendCalls.set(key, (this.backendCalls.get(key) ?? 0) + 1)
    if (seconds !== null) this.backendCall.observe(seconds)
  }

  refused (status: number, code: string): void {
    const key = `${status} ${code}`
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1)
  }

  closed (code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1)
  }
}
