// The connection every role of the Redis engine shares: a command client and
// a subscriber, the scripts, the key names, this node's id, and the error
// count and round trip that health() reports.
import { randomBytes } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../../config/logger.ts'
import { redisKeys, type RedisKeys } from './keys.ts'
import { defineScripts, type Scripts } from './scripts.ts'

export interface RedisEngineOptions {
  url: string
  prefix: string
  /** a node silent for this long is dead: its connections leave presence */
  nodeTimeoutMs: number
  log: Logger
  redisOptions?: RedisOptions
  /** HISTORY_MAX_BYTES: what the history of every channel may hold in all, cluster-wide */
  historyMaxBytes?: number
}

export class RedisConnection {
  // short: it prefixes every connection id of this node
  readonly nodeId = randomBytes(9).toString('base64url')
  readonly client: Redis
  readonly sub: Redis
  readonly keys: RedisKeys
  readonly scripts: Scripts
  readonly log: Logger
  #lastError = 0
  #errors = 0
  #rttMs: number | null = null

  constructor (o: RedisEngineOptions) {
    this.keys = redisKeys(o.prefix)
    this.log = o.log
    const common: RedisOptions = {
      // bounded memory while Redis is away: commands fail fast instead of queueing
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...o.redisOptions
    }
    this.client = new Redis(o.url, common)
    // the subscriber queues only (re)subscriptions, one per local channel
    this.sub = new Redis(o.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true })
    for (const r of [this.client, this.sub]) r.on('error', this.onError)
    this.scripts = defineScripts(this.client)
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
    const ready = (r: Redis) => r.status === 'ready' ? Promise.resolve() : new Promise<void>(resolve => r.once('ready', () => resolve()))
    let timer: NodeJS.Timeout | undefined
    const booted = await Promise.race([
      Promise.all([ready(this.client), ready(this.sub)]).then(() => true),
      new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), ms) })
    ])
    clearTimeout(timer)
    return booted
  }

  isReady (): boolean {
    return this.client.status === 'ready' && this.sub.status === 'ready'
  }

  recordRtt (ms: number): void {
    this.#rttMs = ms
  }

  health (): { errors: number, rttMs: number | null } {
    return { errors: this.#errors, rttMs: this.#rttMs }
  }

  disconnect (): void {
    this.sub.disconnect()
    this.client.disconnect()
  }
}
