// The cluster engine: every node with the same Redis URL is one gateway.
//
// Keys carry a hash tag per channel ({ch:NAME}) and per user ({u:ID}) so a
// Redis Cluster can hold them without a migration; per-channel pub/sub topics
// use the same tag (ready for SPUBLISH). Scripts touch one channel's keys only,
// except the `channels` index noted below.
import type { Logger } from '../config/logger.ts'
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { storedMessageOf } from '../protocol/frames.ts'
import { newEpoch, parseId } from './ids.ts'
import type {
  ChannelSummary, ConnectionRef, ControlMessage, EngineListener, HistoryOptions, PresenceEntry,
  PublishInput, Recovery, RefreshRecord, StoredMessage, UserStatus
} from './types.ts'

// how long a channel's epoch/sequence outlives its last publish
const META_TTL_MS = 24 * 3600 * 1000

const PUBLISH_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'top', 1)
local id = epoch .. ':' .. seq
local frame = '{"type":"message","channel":"' .. ARGV[1] .. '","id":"' .. id .. '","from":' .. ARGV[2] .. ',"data":' .. ARGV[3] .. ',"ts":' .. ARGV[4] .. '}'
local size = tonumber(ARGV[5])
local ttl = tonumber(ARGV[7])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, seq .. '-0', 'e', tonumber(ARGV[4]) + ttl, 'f', frame)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PEXPIRE', KEYS[1], ${META_TTL_MS})
redis.call('PUBLISH', ARGV[8], seq .. ' ' .. ARGV[4] .. ' ' .. frame)
return id
`

// returns {recovered(0|1), top, frame...}; never a partial replay
const RECOVER_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
if not epoch or epoch ~= ARGV[1] then return {0, top} end
local since = tonumber(ARGV[2])
if since > top then return {0, top} end
if since == top then return {1, top} end
local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')
if #entries == 0 then return {0, top} end
local firstSeq = tonumber(string.match(entries[1][1], '^(%d+)'))
if firstSeq ~= since + 1 or tonumber(entries[1][2][2]) <= tonumber(ARGV[3]) then return {0, top} end
local out = {1, top}
for i = 1, #entries do out[#out + 1] = entries[i][2][4] end
return out
`

// HINCRBY that removes the field at zero, so counts never go stale or negative
const COUNT_LUA = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`

// the channel index (KEYS[2]) is the one key outside the channel's slot; a
// Redis Cluster deployment would shard it per slot
const CHANNEL_COUNT_LUA = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[3]) else redis.call('SADD', KEYS[2], ARGV[3]) end
return n
`

const HIT_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`

const USE_REFRESH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local used = redis.call('HINCRBY', KEYS[1], 'u', 1)
return {redis.call('HGET', KEYS[1], 'r'), used}
`

type Script = (...args: Array<string | number>) => Promise<unknown>

export interface RedisEngineOptions {
  url: string
  prefix: string
  /** a node silent for this long is dead: its connections leave presence */
  nodeTimeoutMs: number
  log: Logger
  redisOptions?: RedisOptions
}

export class RedisEngine {
  readonly nodeId = randomUUID()
  readonly client: Redis
  readonly #sub: Redis
  readonly #p: string
  // compared with the topic of every pub/sub message
  readonly #controlTopic: string
  readonly #log: Logger
  readonly #nodeTimeoutMs: number
  #listener: EngineListener | null = null
  readonly #topics = new Map<string, string>()
  readonly #timers: NodeJS.Timeout[] = []
  #lastError = 0
  #errors = 0
  #rttMs: number | null = null
  readonly #scripts: Record<'publish' | 'recover' | 'count' | 'channelCount' | 'hit' | 'useRefresh', Script>

  constructor (o: RedisEngineOptions) {
    this.#p = o.prefix
    this.#controlTopic = `${o.prefix}:control`
    this.#log = o.log
    this.#nodeTimeoutMs = o.nodeTimeoutMs
    const common: RedisOptions = {
      // bounded memory while Redis is away: commands fail fast instead of queueing
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...o.redisOptions
    }
    this.client = new Redis(o.url, common)
    // the subscriber queues only (re)subscriptions, one per local channel
    this.#sub = new Redis(o.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true })
    for (const r of [this.client, this.#sub]) {
      r.on('error', (err: Error) => this.#onError(err))
    }
    const define = (name: string, numberOfKeys: number, lua: string): Script => {
      this.client.defineCommand(name, { numberOfKeys, lua })
      const fn = (this.client as unknown as Record<string, Script>)[name]
      return fn.bind(this.client)
    }
    this.#scripts = {
      publish: define('gcPublish', 2, PUBLISH_LUA),
      recover: define('gcRecover', 2, RECOVER_LUA),
      count: define('gcCount', 1, COUNT_LUA),
      channelCount: define('gcChannelCount', 2, CHANNEL_COUNT_LUA),
      hit: define('gcHit', 1, HIT_LUA),
      useRefresh: define('gcUseRefresh', 1, USE_REFRESH_LUA)
    }
    this.#sub.on('message', (topic: string, payload: string) => this.#onMessage(topic, payload))
  }

  #onError (err: Error): void {
    this.#errors++
    const now = Date.now()
    // an outage produces an error per retry; one line every 10 s is enough
    if (now - this.#lastError > 10_000) {
      this.#lastError = now
      this.#log.warn({ err: { message: err.message } }, 'redis error')
    }
  }

  #key = {
    meta: (c: string) => `${this.#p}:{ch:${c}}:meta`,
    hist: (c: string) => `${this.#p}:{ch:${c}}:hist`,
    users: (c: string) => `${this.#p}:{ch:${c}}:users`,
    topic: (c: string) => `${this.#p}:{ch:${c}}:pub`,
    user: (u: string) => `${this.#p}:{u:${u}}:chans`,
    channels: () => `${this.#p}:channels`,
    nodes: () => `${this.#p}:nodes`,
    nodeConns: (n: string) => `${this.#p}:node:${n}:conns`,
    revoked: (jti: string) => `${this.#p}:revoked:${jti}`,
    refresh: (k: string) => `${this.#p}:rt:${k}`,
    family: (f: string) => `${this.#p}:family:${f}`,
    hits: (k: string) => `${this.#p}:hits:${k}`
  }

  async start (listener: EngineListener): Promise<void> {
    this.#listener = listener
    const ready = (r: Redis) => r.status === 'ready' ? Promise.resolve() : new Promise<void>(resolve => r.once('ready', () => resolve()))
    let timer: NodeJS.Timeout | undefined
    const booted = await Promise.race([
      Promise.all([ready(this.client), ready(this.#sub)]).then(() => true),
      new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), 5000) })
    ])
    clearTimeout(timer)
    if (!booted) this.#log.warn('redis is not reachable yet; the node answers 503 until it is')
    this.#sub.subscribe(this.#controlTopic).catch((err: Error) => this.#onError(err))
    await this.#heartbeat()
    this.#timers.push(setInterval(() => { this.#heartbeat().catch((err: Error) => this.#onError(err)) }, Math.max(100, Math.floor(this.#nodeTimeoutMs / 3))).unref())
  }

  async close (): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    this.#listener = null
    if (this.isReady()) {
      // leaving cleanly: take this node's connections out of presence now
      await this.#reap(this.nodeId).catch((err: Error) => this.#onError(err))
    }
    this.#sub.disconnect()
    this.client.disconnect()
  }

  isReady (): boolean {
    return this.client.status === 'ready' && this.#sub.status === 'ready'
  }

  health (): { errors: number, rttMs: number | null } {
    return { errors: this.#errors, rttMs: this.#rttMs }
  }

  #onMessage (topic: string, payload: string): void {
    const listener = this.#listener
    if (listener === null) return
    if (topic === this.#controlTopic) {
      listener.control(JSON.parse(payload) as ControlMessage)
      return
    }
    const channel = this.#topics.get(topic)
    if (channel === undefined) return
    // "<seq> <ts> <frame>"
    const a = payload.indexOf(' ')
    const b = payload.indexOf(' ', a + 1)
    listener.deliver(channel, Number(payload.slice(0, a)), payload.slice(b + 1), Number(payload.slice(a + 1, b)))
  }

  async subscribe (channel: string): Promise<void> {
    const topic = this.#key.topic(channel)
    this.#topics.set(topic, channel)
    await this.#sub.subscribe(topic)
  }

  async unsubscribe (channel: string): Promise<void> {
    const topic = this.#key.topic(channel)
    this.#topics.delete(topic)
    await this.#sub.unsubscribe(topic)
  }

  async publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    return await this.#scripts.publish(
      this.#key.meta(channel), this.#key.hist(channel),
      channel, input.from === null ? 'null' : JSON.stringify(input.from), input.dataJson, input.ts,
      opts.historySize, newEpoch(), opts.historyTtl * 1000, this.#key.topic(channel)
    ) as string
  }

  async publishTransient (channel: string, frame: string): Promise<void> {
    await this.client.publish(this.#key.topic(channel), `0 0 ${frame}`)
  }

  async recover (channel: string, since: string): Promise<Recovery> {
    const pos = parseId(since)
    if (pos === null) return { recovered: false, top: 0, frames: [] }
    const out = await this.#scripts.recover(this.#key.meta(channel), this.#key.hist(channel), pos.epoch, pos.seq, Date.now()) as Array<number | string>
    return { recovered: out[0] === 1, top: Number(out[1]), frames: out.slice(2) as string[] }
  }

  async history (channel: string, opts: { since?: string, limit: number }): Promise<{ messages: StoredMessage[], recovered: boolean }> {
    let frames: string[]
    let recovered = true
    if (opts.since !== undefined) {
      const r = await this.recover(channel, opts.since)
      recovered = r.recovered
      frames = r.frames.slice(0, opts.limit)
    } else {
      const now = Date.now()
      const rows = await this.client.xrevrange(this.#key.hist(channel), '+', '-', 'COUNT', opts.limit)
      frames = rows.reverse().filter(([, f]) => Number(f[1]) > now).map(([, f]) => f[3])
    }
    return {
      recovered,
      messages: frames.map(storedMessageOf)
    }
  }

  async control (msg: ControlMessage): Promise<void> {
    await this.client.publish(this.#controlTopic, JSON.stringify(msg))
  }

  async #track (ref: ConnectionRef, delta: 1 | -1): Promise<number> {
    const [n] = await Promise.all([
      this.#scripts.channelCount(this.#key.users(ref.channel), this.#key.channels(), ref.userId, delta, ref.channel) as Promise<number>,
      this.#scripts.count(this.#key.user(ref.userId), ref.channel, delta),
      this.#scripts.count(this.#key.nodeConns(this.nodeId), `${ref.channel}\n${ref.userId}`, delta)
    ])
    return n
  }

  async addConnection (ref: ConnectionRef): Promise<{ joined: boolean }> {
    return { joined: await this.#track(ref, 1) === 1 }
  }

  async removeConnection (ref: ConnectionRef): Promise<{ left: boolean }> {
    return { left: await this.#track(ref, -1) <= 0 }
  }

  async presence (channel: string): Promise<PresenceEntry[]> {
    const users = await this.client.hgetall(this.#key.users(channel))
    return Object.entries(users).map(([userId, n]) => ({ userId, connections: Number(n) }))
  }

  async channels (): Promise<ChannelSummary[]> {
    const names = await this.client.smembers(this.#key.channels())
    const pipe = this.client.pipeline()
    for (const name of names) pipe.hvals(this.#key.users(name))
    const counts = await pipe.exec() ?? []
    return names.map((name, i) => {
      const vals = (counts[i]?.[1] ?? []) as string[]
      return { name, users: vals.length, connections: vals.reduce((s, v) => s + Number(v), 0) }
    }).filter(c => c.users > 0)
  }

  async userStatus (userId: string): Promise<UserStatus> {
    const chans = await this.client.hgetall(this.#key.user(userId))
    let connections = 0
    for (const n of Object.values(chans)) connections += Number(n)
    return { connections, channels: Object.keys(chans) }
  }

  /** Heartbeat, and reaping of nodes that stopped beating (crashed without shutdown). */
  async #heartbeat (): Promise<void> {
    if (!this.isReady()) return
    const now = Date.now()
    const t0 = performance.now()
    await this.client.hset(this.#key.nodes(), this.nodeId, now)
    this.#rttMs = performance.now() - t0
    const nodes = await this.client.hgetall(this.#key.nodes())
    for (const [node, at] of Object.entries(nodes)) {
      if (node === this.nodeId || now - Number(at) < this.#nodeTimeoutMs) continue
      // one reaper per dead node
      const lock = await this.client.set(`${this.#p}:reap:${node}`, this.nodeId, 'PX', this.#nodeTimeoutMs, 'NX')
      if (lock === 'OK') await this.#reap(node)
    }
  }

  /** Removes a node's connections from presence and user status; leave frames go to the channels. */
  async #reap (node: string): Promise<void> {
    const conns = await this.client.hgetall(this.#key.nodeConns(node))
    for (const [field, count] of Object.entries(conns)) {
      const nl = field.indexOf('\n')
      const channel = field.slice(0, nl)
      const userId = field.slice(nl + 1)
      const n = Number(count)
      const [left] = await Promise.all([
        this.#scripts.channelCount(this.#key.users(channel), this.#key.channels(), userId, -n, channel) as Promise<number>,
        this.#scripts.count(this.#key.user(userId), channel, -n)
      ])
      if (left <= 0 && node !== this.nodeId) this.#listener?.presenceLost(channel, userId)
    }
    await this.client.del(this.#key.nodeConns(node))
    await this.client.hdel(this.#key.nodes(), node)
    if (Object.keys(conns).length > 0) this.#log.info({ node, connections: Object.keys(conns).length }, 'removed a dead node from presence')
  }

  async revokeToken (jti: string, ttlSeconds: number): Promise<void> {
    await this.client.set(this.#key.revoked(jti), '1', 'EX', ttlSeconds)
  }

  async isTokenRevoked (jti: string): Promise<boolean> {
    return await this.client.exists(this.#key.revoked(jti)) === 1
  }

  async saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void> {
    const k = this.#key.refresh(key)
    await this.client.multi().hset(k, 'r', JSON.stringify(record), 'u', 0).expire(k, ttlSeconds).exec()
  }

  async peekRefreshToken (key: string): Promise<RefreshRecord | null> {
    const raw = await this.client.hget(this.#key.refresh(key), 'r')
    return raw === null ? null : JSON.parse(raw) as RefreshRecord
  }

  async useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null> {
    const out = await this.#scripts.useRefresh(this.#key.refresh(key)) as [string, number] | null
    if (out === null) return null
    return { record: JSON.parse(out[0]) as RefreshRecord, reused: Number(out[1]) > 1 }
  }

  async revokeFamily (family: string, ttlSeconds: number): Promise<void> {
    await this.client.set(this.#key.family(family), '1', 'EX', ttlSeconds)
  }

  async isFamilyRevoked (family: string): Promise<boolean> {
    return await this.client.exists(this.#key.family(family)) === 1
  }

  async hit (key: string, windowSeconds: number): Promise<number> {
    return await this.#scripts.hit(this.#key.hits(key), windowSeconds * 1000) as number
  }

  async hits (key: string): Promise<number> {
    return Number(await this.client.get(this.#key.hits(key)) ?? 0)
  }

  async clearHits (key: string): Promise<void> {
    await this.client.del(this.#key.hits(key))
  }
}
