// This node as the admin console sees it: once a second a small snapshot
// (sockets, users, channels, memory, event-loop delay, messages per second and
// the busiest local channels) goes to the engine's node registry, where every
// node reads it, and a five-minute series of the node's own numbers stays here
// for the console's charts. The node also answers the console's questions
// that only the node itself can: which of a user's sockets it holds.
import { hostname } from 'node:os'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Logger } from '../config/logger.ts'
import type { NodeRegistry } from '../engine/nodes.ts'
import type { ConnectionInfo } from '../engine/types.ts'
import { ChannelCounter } from './channel-counter.ts'
import type { Hub } from './hub.ts'
import type { Stats } from './stats.ts'

export interface NodeSnapshot {
  nodeId: string
  host: string
  pid: number
  /** ms since the epoch */
  startedAt: number
  at: number
  /** open sockets */
  connections: number
  /** users with a socket here */
  users: number
  /** channels with a local subscription */
  channels: number
  subscriptions: number
  /** messages published through this node (its clients and its server API calls), per second */
  published: number
  /** messages this node received for its local subscribers, all channels together, per second */
  delivered: number
  memory: { rss: number, heapUsed: number, heapTotal: number }
  eventLoop: { meanMs: number, p99Ms: number, maxMs: number }
  /** the busiest channels with a local subscriber: name, messages per second */
  rates: Array<[channel: string, perSecond: number]>
  /** some users of this node's sockets (the first ones): user id, sockets here */
  userSample: Array<[userId: string, sockets: number]>
}

/** one second of a node, or of the cluster: messages published in it and sockets open at its end */
export type SeriesPoint = [second: number, published: number, connections: number]

/** what one node asks all the others (engine questions are text: this, as JSON) */
export type NodeQuestion = { kind: 'user', userId: string } | { kind: 'series' }

export interface NodeSamplerOptions {
  hub: Hub
  stats: Stats
  nodes: NodeRegistry
  log: Logger
}

const INTERVAL_MS = 1000
// five minutes of seconds
const SERIES_LENGTH = 300
// a report is read by every node every second: the busiest channels, not all of them
const RATES_KEPT = 100
const USERS_KEPT = 50

// ms between the delay monitor's samples: what it records is the interval, the lag on top of this
const DELAY_RESOLUTION_MS = 10

const round2 = (n: number): number => Math.round(n * 100) / 100
const lagMs = (ns: number): number => Number.isFinite(ns) ? round2(Math.max(0, ns / 1e6 - DELAY_RESOLUTION_MS)) : 0

export class NodeSampler {
  readonly #o: NodeSamplerOptions
  readonly #counter = new ChannelCounter()
  readonly #delay: IntervalHistogram
  readonly #startedAt = Date.now()
  readonly #host = hostname()
  readonly #series: SeriesPoint[] = []
  #timer: NodeJS.Timeout | null = null
  #reporting: Promise<void> = Promise.resolve()
  #lastAt = performance.now()
  #lastPublished: number
  #latest: NodeSnapshot

  constructor (o: NodeSamplerOptions) {
    this.#o = o
    this.#delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
    this.#lastPublished = o.stats.publishedByClient + o.stats.publishedByApi
    this.#latest = this.#sample(0)
  }

  /** the latest snapshot of this node */
  get latest (): NodeSnapshot {
    return this.#latest
  }

  /**
   * The latest snapshot with this moment's sockets, users and channels: the
   * node that answers a console shows its own changes at once (its rates,
   * memory and delay stay those of the last second).
   */
  current (): NodeSnapshot {
    const { hub } = this.#o
    return { ...this.#latest, at: Date.now(), connections: hub.size, users: hub.userCount, channels: hub.channelCount, subscriptions: this.#subscriptions(), userSample: hub.userSample(USERS_KEPT) }
  }

  /** this node's seconds, oldest first (up to five minutes) */
  series (): SeriesPoint[] {
    return this.#series.slice()
  }

  async start (): Promise<void> {
    this.#o.stats.channelMessages = this.#counter
    this.#delay.enable()
    this.#lastAt = performance.now()
    // not awaited: with the engine away at start-up the node must still come up (it answers once it is back)
    this.#o.nodes.answer(question => this.answer(question)).catch((err: unknown) => this.#o.log.warn({ err }, 'node questions not answered'))
    this.#report()
    this.#timer = setInterval(() => this.#tick(), INTERVAL_MS).unref()
  }

  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#delay.disable()
    if (this.#o.stats.channelMessages === this.#counter) this.#o.stats.channelMessages = null
    // not awaited either: a subscriber waiting for Redis would hold the shutdown up
    this.#o.nodes.answer(null).catch(() => {})
    // a report still in flight would otherwise land after the node left the registry
    await this.#reporting
  }

  /** a snapshot of the last second, kept and reported */
  #tick (): void {
    const now = performance.now()
    const seconds = Math.max(0.001, (now - this.#lastAt) / 1000)
    this.#lastAt = now
    this.#latest = this.#sample(seconds)
    const s = this.#latest
    this.#series.push([Math.round(s.at / 1000), Math.round(s.published * seconds), s.connections])
    if (this.#series.length > SERIES_LENGTH) this.#series.shift()
    this.#report()
  }

  /** answers a question of the console, from any node */
  answer (question: string): string {
    const q = JSON.parse(question) as NodeQuestion
    if (q.kind === 'user' && typeof q.userId === 'string') return JSON.stringify(this.#o.hub.userConnections(q.userId) satisfies ConnectionInfo[])
    if (q.kind === 'series') return JSON.stringify(this.#series)
    throw new Error('unknown question')
  }

  #report (): void {
    const text = JSON.stringify(this.#latest)
    // one report in flight at most: a slow engine skips seconds rather than queueing them
    this.#reporting = this.#reporting.then(() => this.#o.nodes.report(text)).catch((err: unknown) => {
      this.#o.log.debug({ err }, 'node report failed')
    })
  }

  #subscriptions (): number {
    let n = 0
    for (const count of this.#o.hub.subscriptionsByNamespace().values()) n += count
    return n
  }

  #sample (seconds: number): NodeSnapshot {
    const { hub, stats, nodes } = this.#o
    const published = stats.publishedByClient + stats.publishedByApi
    const rates: Array<[string, number]> = []
    let delivered = 0
    if (seconds > 0) {
      for (const [channel, n] of this.#counter.take()) {
        delivered += n
        rates.push([channel, round2(n / seconds)])
      }
    }
    rates.sort((a, b) => b[1] - a[1])
    if (rates.length > RATES_KEPT) rates.length = RATES_KEPT
    const mem = process.memoryUsage()
    const d = this.#delay
    const snapshot: NodeSnapshot = {
      nodeId: nodes.nodeId,
      host: this.#host,
      pid: process.pid,
      startedAt: this.#startedAt,
      at: Date.now(),
      connections: hub.size,
      users: hub.userCount,
      channels: hub.channelCount,
      subscriptions: this.#subscriptions(),
      published: seconds > 0 ? round2((published - this.#lastPublished) / seconds) : 0,
      delivered: seconds > 0 ? round2(delivered / seconds) : 0,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal },
      eventLoop: { meanMs: lagMs(d.mean), p99Ms: lagMs(d.percentile(99)), maxMs: lagMs(d.max) },
      rates,
      userSample: hub.userSample(USERS_KEPT)
    }
    this.#lastPublished = published
    d.reset()
    return snapshot
  }
}
