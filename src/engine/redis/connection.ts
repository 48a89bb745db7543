// The connection every role of the Redis engine shares: a command client and
// a subscriber, the scripts, the key names, this node's id, and the error
// count and round trip that health() reports. On one Redis, classic pub/sub;
// on a Redis Cluster (REDIS_CLUSTER), sharded pub/sub: a topic lives on the
// shard of its slot, so adding shards adds broker capacity.
import { randomBytes } from 'node:crypto'
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'
import type { Logger } from '../../config/logger.ts'
import { redisKeys, type RedisKeys } from './keys.ts'
import { defineScripts, type Scripts } from './scripts.ts'

export interface RedisEngineOptions {
  /** one Redis URL; with `cluster`, a comma list of seed nodes */
  url: string
  /** a Redis Cluster: keys and topics spread over its shards by slot */
  cluster?: boolean
  prefix: string
  /** a node silent for this long is dead: its connections leave presence */
  nodeTimeoutMs: number
  log: Logger
  redisOptions?: RedisOptions
  /** HISTORY_MAX_BYTES: what the history of every channel may hold in all, cluster-wide */
  historyMaxBytes?: number
}

/** `redis://[user:pass@]host:port,…` → the seeds, and the credentials of the first URL that has them. */
export function clusterSeeds (url: string): { seeds: ClusterNode[], username?: string, password?: string, tls: boolean } {
  const out: { seeds: ClusterNode[], username?: string, password?: string, tls: boolean } = { seeds: [], tls: false }
  for (const item of url.split(',').map(u => u.trim()).filter(u => u !== '')) {
    const u = new URL(item)
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`REDIS_URL: ${u.protocol} is not redis: or rediss:`)
    if (u.protocol === 'rediss:') out.tls = true
    out.seeds.push({ host: u.hostname, port: Number(u.port === '' ? 6379 : u.port) })
    if (out.password === undefined && u.password !== '') {
      out.password = decodeURIComponent(u.password)
      if (u.username !== '') out.username = decodeURIComponent(u.username)
    }
  }
  if (out.seeds.length === 0) throw new Error('REDIS_URL names no Redis node')
  return out
}

type Client = Redis | Cluster

/** CLUSTER NODES: whether no master that serves slots is flagged failing (`fail` or `fail?`). */
export function mastersServe (nodes: string): boolean {
  for (const line of nodes.split('\n')) {
    const parts = line.split(' ')
    // id addr flags master ping pong epoch link slot…: a master with slots
    if (parts.length < 9) continue
    const flags = parts[2].split(',')
    if (flags.includes('master') && (flags.includes('fail') || flags.includes('fail?'))) return false
  }
  return true
}

export class RedisConnection {
  // short: it prefixes every connection id of this node
  readonly nodeId = randomBytes(9).toString('base64url')
  readonly client: Client
  readonly sub: Client
  /** a Redis Cluster: sharded pub/sub, and no key or script across two slots */
  readonly cluster: boolean
  /** the command that publishes on a topic, in scripts too */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH'
  readonly keys: RedisKeys
  readonly scripts: Scripts
  readonly log: Logger
  #lastError = 0
  #errors = 0
  #rttMs: number | null = null
  // cluster: what CLUSTER INFO said last (a shard without a master, mid-failover, is `fail`)
  #clusterOk = true
  #probe: NodeJS.Timeout | null = null

  constructor (o: RedisEngineOptions) {
    this.keys = redisKeys(o.prefix, o.cluster === true)
    this.log = o.log
    const common: RedisOptions = {
      // bounded memory while Redis is away: commands fail fast instead of queueing
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...o.redisOptions
    }
    this.cluster = o.cluster === true
    this.publishCommand = this.cluster ? 'SPUBLISH' : 'PUBLISH'
    if (this.cluster) {
      const { seeds, username, password, tls } = clusterSeeds(o.url)
      const redisOptions: RedisOptions = { ...common, username, password, ...(tls ? { tls: {} } : {}) }
      const cluster = {
        // a command in flight when its shard fails is not sent again on the new master:
        // a publish could run twice (its message delivered twice, under two ids)
        redisOptions: { ...redisOptions, autoResendUnfulfilledCommands: false },
        enableOfflineQueue: false,
        maxRedirections: 8,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 300,
        clusterRetryStrategy: (times: number) => Math.min(times * 200, 2000),
        // no timed refresh of the slot map: each one rebuilt and compared the whole 16384-slot
        // map, stalling the event loop for tens of ms (the rooms p99); a failover is found
        // by the connection that breaks and by MOVED, and the readiness probe watches it
        slotsRefreshInterval: 0
      }
      this.client = new Cluster(seeds, cluster)
      // one subscriber per shard, each resubscribing its topics when its shard's master changes
      this.sub = new Cluster(seeds, { ...cluster, redisOptions, enableOfflineQueue: true, shardedSubscribers: true })
    } else {
      this.client = new Redis(o.url, common)
      // the subscriber queues only (re)subscriptions, one per local channel
      this.sub = new Redis(o.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true })
    }
    for (const r of [this.client, this.sub]) r.on('error', this.onError)
    this.scripts = defineScripts(this.client, this.cluster)
  }

  /** Every message of the topics this node subscribed to, classic or sharded. */
  onMessage (fn: (topic: string, payload: string) => void): void {
    this.sub.on(this.cluster ? 'smessage' : 'message', fn)
  }

  async subscribe (topic: string): Promise<void> {
    await (this.cluster ? this.sub.ssubscribe(topic) : this.sub.subscribe(topic))
  }

  async unsubscribe (topic: string): Promise<void> {
    await (this.cluster ? this.sub.sunsubscribe(topic) : this.sub.unsubscribe(topic))
  }

  /** Resolves to how many subscribers got it (on a cluster: on the topic's shard, which is all of them). */
  async publish (topic: string, payload: string): Promise<number> {
    return Number(this.cluster ? await this.client.spublish(topic, payload) : await this.client.publish(topic, payload))
  }

  /** Counts an error; bound, so it can be handed to catch() and on('error'). */
  readonly onError = (err: Error): void => {
    this.#errors++
    const now = Date.now()
    // an outage produces an error per retry; one line every 10 s is enough
    if (now - this.#lastError > 10_000) {
      this.#lastError = now
      this.log.warn({ err: { message: err.message } }, 'redis error')
    }
  }

  /** true once both clients are ready, false when `ms` passed first */
  async waitReady (ms: number): Promise<boolean> {
    const ready = (r: Client) => r.status === 'ready' ? Promise.resolve() : new Promise<void>(resolve => r.once('ready', () => resolve()))
    let timer: NodeJS.Timeout | undefined
    const booted = await Promise.race([
      Promise.all([ready(this.client), ready(this.sub)]).then(() => true),
      new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), ms) })
    ])
    clearTimeout(timer)
    return booted
  }

  isReady (): boolean {
    return this.client.status === 'ready' && this.sub.status === 'ready' && this.#clusterOk
  }

  /**
   * Cluster: asks a node every `everyMs` whether every slot has a working
   * master. From the moment a master stops answering (flagged `fail?`, then
   * `fail`) until its replica has taken over, the engine is not ready: new
   * upgrades get 503 and /ready says so, open sockets go on.
   */
  startProbe (everyMs = 500): void {
    if (!this.cluster || this.#probe !== null) return
    const probe = (): void => {
      if (this.client.status !== 'ready') return
      this.client.cluster('NODES').then((nodes) => {
        const ok = mastersServe(String(nodes))
        if (ok !== this.#clusterOk) this.log.warn({ clusterState: ok ? 'ok' : 'fail' }, ok ? 'redis cluster serves every slot again' : 'redis cluster has a master down')
        this.#clusterOk = ok
      }, this.onError)
    }
    this.#probe = setInterval(probe, everyMs).unref()
  }

  recordRtt (ms: number): void {
    this.#rttMs = ms
  }

  health (): { errors: number, rttMs: number | null } {
    return { errors: this.#errors, rttMs: this.#rttMs }
  }

  disconnect (): void {
    if (this.#probe !== null) clearInterval(this.#probe)
    this.#probe = null
    this.sub.disconnect()
    this.client.disconnect()
  }
}
