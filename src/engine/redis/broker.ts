// The Redis broker: history in a stream per channel, fan-out by pub/sub, one
// topic per channel plus the control topic, and a topic per node for calls on
// the connections it holds (connection ids start with the node's id). On a
// Redis Cluster each channel's keys and topic live on its slot's shard; the
// history byte indexes, in a slot of their own, are kept up in batches.
import { randomUUID } from 'node:crypto'
import { GatecastError } from '../../protocol/errors.ts'
import { storedMessageOf } from '../../protocol/frames.ts'
import type { Broker, BrokerListener } from '../broker.ts'
import { newEpoch, parseId } from '../ids.ts'
import type { ConnectionCall, ConnectionInfo, ControlMessage, HistoryOptions, PublishInput, Recovery, StoredMessage } from '../types.ts'
import type { RedisConnection } from './connection.ts'

type Answer = ConnectionInfo | true | null
// cluster: the furthest a node saw a channel get, and in which of its lives
interface Seen { seq: number, epoch: string }
type NodeMessage =
  | { t: 'q', id: string, from: string, connectionId: string, call: ConnectionCall }
  | { t: 'a', id: string, answer: Answer }

// a node that holds the connection but does not answer within this is stuck or dying
const CALL_TIMEOUT_MS = 3000
// once over HISTORY_MAX_BYTES, history is cut to this share of it, so evictions are rare
const EVICT_TO = 0.9
// one eviction's rounds: a bound, not a target (one round usually does it)
const EVICT_ROUNDS = 100
// the largest channels one round looks at
const EVICT_WIDTH = 64
// cluster: how often a node adds up its publishes' history bytes into the indexes
const ACCOUNT_MS = 250
// cluster: channels whose highest sequence a node remembers (acknowledged or delivered)
const SEEN_CHANNELS = 10_000

/**
 * The level to cut the largest channels down to (sizes largest first) so that
 * at least `excess` bytes go; 0 when even that is not enough (the next round
 * looks at the channels after them).
 */
export function waterLevel (sizes: readonly number[], excess: number): number {
  let sum = 0
  for (let k = 0; k < sizes.length; k++) {
    sum += sizes[k]
    const next = sizes[k + 1] ?? 0
    // cutting the first k+1 down to `next` frees sum - (k+1)·next
    if (sum - (k + 1) * next >= excess) return Math.max(next, Math.floor((sum - excess) / (k + 1)))
  }
  return 0
}

export class RedisBroker implements Broker {
  readonly #c: RedisConnection
  // compared with the topic of every pub/sub message
  readonly #controlTopic: string
  readonly #nodeTopic: string
  readonly #topics = new Map<string, string>()
  readonly #calls = new Map<string, { resolve: (a: Answer) => void, timer: NodeJS.Timeout }>()
  #listener: BrokerListener | null = null
  readonly #maxBytes: number
  #evicting: Promise<void> | null = null
  // cluster: history bytes per channel not yet in the indexes, and the timer that adds them
  readonly #deltas = new Map<string, number>()
  #accounting: NodeJS.Timeout | null = null
  // cluster: per channel the highest sequence this node saw acknowledged or delivered; a
  // stream found below it lost entries in a failover (see the publish and recover scripts)
  readonly #seen = new Map<string, Seen>()
  // the epoch the next channel that starts a life gets; drawn anew only once one took it
  // (drawing one per publish, for the rare publish that needs it, cost a few µs each)
  #epoch = newEpoch()

  constructor (c: RedisConnection, maxBytes = Infinity) {
    this.#c = c
    this.#maxBytes = maxBytes
    this.#controlTopic = c.keys.control()
    this.#nodeTopic = c.keys.nodeTopic(c.nodeId)
    c.onMessage((topic, payload) => this.#onMessage(topic, payload))
  }

  /** null: deliveries are dropped (not started, or closed) */
  attach (listener: BrokerListener | null): void {
    this.#listener = listener
  }

  /**
   * Control messages reach this node once this resolves (the subscriber queues
   * the subscriptions until Redis is there; a failure is counted, never thrown).
   */
  async listenControl (): Promise<void> {
    await Promise.all([
      this.#c.subscribe(this.#controlTopic).catch(this.#c.onError),
      this.#c.subscribe(this.#nodeTopic).catch(this.#c.onError)
    ])
  }

  #onMessage (topic: string, payload: string): void {
    const listener = this.#listener
    if (listener === null) {
      // answers to this node's own calls are settled even while it has no listener (shutdown)
      if (topic === this.#nodeTopic) {
        const msg = JSON.parse(payload) as NodeMessage
        if (msg.t === 'a') this.#settle(msg.id, msg.answer)
      }
      return
    }
    if (topic === this.#controlTopic) {
      listener.control(JSON.parse(payload) as ControlMessage)
      return
    }
    if (topic === this.#nodeTopic) {
      this.#onNodeMessage(listener, JSON.parse(payload) as NodeMessage)
      return
    }
    const channel = this.#topics.get(topic)
    if (channel === undefined) return
    // "<seq> <ts> <frame>"; on a cluster a message's is "<seq>/<previous seq>/<epoch> <ts> <frame>"
    const a = payload.indexOf(' ')
    const b = payload.indexOf(' ', a + 1)
    const head = payload.slice(0, a)
    const slash = this.#c.cluster ? head.indexOf('/') : -1
    const seq = Number(slash === -1 ? head : head.slice(0, slash))
    if (slash !== -1) this.#check(channel, head, slash, seq)
    listener.deliver(channel, seq, payload.slice(b + 1), Number(payload.slice(a + 1, b)))
  }

  /**
   * Cluster: a message whose previous entry is older than what this node saw of
   * the channel follows a loss (a failover to a replica that missed the last
   * entries): whatever ids the lost entries had must not be answered from this
   * stream, so its epoch ends (every `since` from it is then recovered: false).
   */
  #check (channel: string, head: string, slash: number, seq: number): void {
    const second = head.indexOf('/', slash + 1)
    const prev = Number(head.slice(slash + 1, second))
    const epoch = head.slice(second + 1)
    const seen = this.#seen.get(channel)
    // a message newer than anything seen, in the same life of the channel (a new life starts
    // with no entry before it), whose previous entry is older than something seen: a gap.
    // (This node's own publishes are often seen in their answer before their delivery.)
    if (seen !== undefined && seen.epoch === epoch && seq > seen.seq && prev < seen.seq) {
      const { keys: k, scripts: s } = this.#c
      this.#c.log.warn({ channel, seen: seen.seq, prev }, 'channel history lost entries (a failover): its epoch ends')
      s.endEpoch(k.meta(channel), k.hist(channel), epoch, newEpoch()).then((had) => {
        if (Number(had) > 0) this.#account(channel, -Number(had))
      }, this.#c.onError)
    }
    this.#saw(channel, seq, epoch)
  }

  #saw (channel: string, seq: number, epoch: string): void {
    const seen = this.#seen
    const known = seen.get(channel)
    if (known !== undefined) {
      if (known.seq < seq) {
        known.seq = seq
        known.epoch = epoch
      }
      return
    }
    // bounded: the oldest remembered channel goes first (it only weakens the check for it)
    if (seen.size >= SEEN_CHANNELS) seen.delete(seen.keys().next().value as string)
    seen.set(channel, { seq, epoch })
  }

  async subscribe (channel: string): Promise<void> {
    const topic = this.#c.keys.topic(channel)
    this.#topics.set(topic, channel)
    await this.#c.subscribe(topic)
  }

  async unsubscribe (channel: string): Promise<void> {
    const topic = this.#c.keys.topic(channel)
    this.#topics.delete(topic)
    await this.#c.unsubscribe(topic)
  }

  async publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    try {
      return await this.#publish(channel, input, opts)
    } catch (err) {
      // the script may have run and its answer been lost: the epoch it offered may be taken
      this.#epoch = newEpoch()
      throw err
    }
  }

  async #publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    const k = this.#c.keys
    const args = [
      channel, input.from === null ? 'null' : JSON.stringify(input.from), input.dataJson, input.ts,
      opts.historySize, this.#epoch, opts.historyTtl * 1000, k.topic(channel)
    ]
    if (this.#c.cluster) {
      const [id, delta] = await this.#c.scripts.publish(k.meta(channel), k.hist(channel), ...args, this.#seen.get(channel)?.seq ?? 0) as [string, number]
      this.#tookEpoch(id)
      if (delta !== 0) this.#account(channel, delta)
      const pos = parseId(id)
      if (pos !== null) this.#saw(channel, pos.seq, pos.epoch)
      return id
    }
    const [id, total] = await this.#c.scripts.publish(k.meta(channel), k.hist(channel), k.histSizes(), k.histTotal(), ...args) as [string, number]
    this.#tookEpoch(id)
    if (total > this.#maxBytes) this.#startEviction()
    return id
  }

  // a channel started a life with the offered epoch: the next one gets another
  #tookEpoch (id: string): void {
    const epoch = this.#epoch
    if (id.length > epoch.length && id.charCodeAt(epoch.length) === 58 && id.startsWith(epoch)) this.#epoch = newEpoch()
  }

  #startEviction (): void {
    if (this.#evicting !== null) return
    this.#evicting = this.#evict().catch(this.#c.onError).finally(() => { this.#evicting = null })
  }

  // cluster: bytes a publish or a trim added to (or took from) a channel's history, added to the indexes soon
  #account (channel: string, delta: number): void {
    this.#deltas.set(channel, (this.#deltas.get(channel) ?? 0) + delta)
    this.#accounting ??= setTimeout(() => {
      this.#accounting = null
      this.flushAccounting().catch(this.#c.onError)
    }, ACCOUNT_MS).unref()
  }

  /**
   * Cluster: adds the pending history bytes to the indexes, both in one step
   * (and evicts past HISTORY_MAX_BYTES). A batch whose step failed is not sent
   * again: it may have been applied, and counting it twice would evict live
   * history for bytes that do not exist; one not counted only lets the bound
   * be passed by that much until those entries expire.
   */
  async flushAccounting (): Promise<void> {
    if (this.#deltas.size === 0) return
    const { keys: k, scripts: s } = this.#c
    const args: Array<string | number> = []
    for (const [channel, d] of this.#deltas) args.push(channel, d)
    this.#deltas.clear()
    const total = await s.account(k.histSizes(), k.histTotal(), ...args) as number
    if (total > this.#maxBytes) this.#startEviction()
  }

  /** Drops the bytes of a channel's history the script took out, on either engine shape. */
  async #trim (channel: string, level: number, target: number, total: number): Promise<number> {
    const { keys: k, scripts: s } = this.#c
    if (!this.#c.cluster) return await s.trimOldest(k.meta(channel), k.hist(channel), k.histSizes(), k.histTotal(), channel, level, target) as number
    const dropped = await s.trimOldest(k.meta(channel), k.hist(channel), channel, level, target, total) as number
    if (dropped > 0) await s.account(k.histSizes(), k.histTotal(), channel, -dropped)
    return dropped
  }

  /**
   * Takes the channels whose history stream expired (idle past their TTL) out
   * of the byte counts; resolves to how many there were.
   */
  async #reconcile (channels: readonly string[]): Promise<number> {
    const { client, keys: k } = this.#c
    if (channels.length === 0) return 0
    // one command each (sent together): on a cluster the streams are on many shards
    const exists = await Promise.all(channels.map(channel => client.exists(k.hist(channel))))
    const gone = channels.filter((_c, i) => exists[i] === 0)
    // a level no channel reaches: only a vanished stream gives anything back
    await Promise.all(gone.map(channel => this.#trim(channel, Number.MAX_SAFE_INTEGER, 0, 0)))
    return gone.length
  }

  /**
   * Walks every channel with history bytes and takes out the ones whose stream
   * expired, so the total stays true while nothing is evicted. One node a
   * period does it (a lock in Redis).
   */
  async sweepHistory (periodMs: number): Promise<void> {
    const { client, keys: k, nodeId } = this.#c
    if (await client.set(k.histSweep(), nodeId, 'PX', Math.max(1000, periodMs - 1000), 'NX') !== 'OK') return
    let cursor = '0'
    do {
      const [next, flat] = await client.zscan(k.histSizes(), cursor, 'COUNT', 200)
      cursor = next
      const channels: string[] = []
      for (let i = 0; i < flat.length; i += 2) channels.push(flat[i])
      await this.#reconcile(channels)
    } while (cursor !== '0')
  }

  /** resolves when the pending history bytes are counted (cluster) and an eviction in flight is done (tests, shutdown) */
  async settled (): Promise<void> {
    await this.flushAccounting()
    await this.#evicting
  }

  /** Shutdown: what is still pending goes into the indexes. */
  async close (): Promise<void> {
    if (this.#accounting !== null) clearTimeout(this.#accounting)
    this.#accounting = null
    if (this.#c.isReady()) await this.flushAccounting().catch(this.#c.onError)
  }

  /**
   * The oldest entries of the largest channels go first, until the cluster's
   * history is back under EVICT_TO of the bound: the largest channels are cut
   * to one level (water-filling: the highest level that frees enough), so equal
   * channels share the cut. Any node may run it; two at once only cut a little more.
   */
  async #evict (): Promise<void> {
    const { client, keys: k } = this.#c
    const target = Math.floor(this.#maxBytes * EVICT_TO)
    for (let round = 0; round < EVICT_ROUNDS; round++) {
      const total = Number(await client.get(k.histTotal()) ?? 0)
      if (total <= target) return
      const flat = await client.zrevrange(k.histSizes(), 0, EVICT_WIDTH - 1, 'WITHSCORES')
      if (flat.length === 0) return
      const sizes: Array<[string, number]> = []
      for (let i = 0; i < flat.length; i += 2) sizes.push([flat[i], Number(flat[i + 1])])
      // a stream that expired still counts until someone notices: not a reason to cut live ones
      if (await this.#reconcile(sizes.map(([channel]) => channel)) > 0) continue
      const level = waterLevel(sizes.map(([, n]) => n), total - target)
      await Promise.all(sizes.filter(([, n]) => n > level).map(([channel]) => this.#trim(channel, level, target, total)))
    }
  }

  async publishTransient (channel: string, frame: string): Promise<void> {
    await this.#c.publish(this.#c.keys.topic(channel), `0 0 ${frame}`)
  }

  async recover (channel: string, since: string): Promise<Recovery> {
    const pos = parseId(since)
    if (pos === null) return { recovered: false, top: 0, frames: [] }
    const k = this.#c.keys
    const out = await this.#c.scripts.recover(k.meta(channel), k.hist(channel), pos.epoch, pos.seq, Date.now(), this.#seen.get(channel)?.seq ?? 0) as Array<number | string>
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
      const rows = await this.#c.client.xrevrange(this.#c.keys.hist(channel), '+', '-', 'COUNT', opts.limit)
      frames = rows.reverse().filter(([, f]) => Number(f[1]) > now).map(([, f]) => f[3])
    }
    return {
      recovered,
      messages: frames.map(storedMessageOf)
    }
  }

  async control (msg: ControlMessage): Promise<void> {
    await this.#c.publish(this.#controlTopic, JSON.stringify(msg))
  }

  connectionId (): string {
    return `${this.#c.nodeId}.${randomUUID()}`
  }

  async connection (connectionId: string, call: ConnectionCall): Promise<Answer> {
    const dot = connectionId.indexOf('.')
    if (dot <= 0) return null
    const node = connectionId.slice(0, dot)
    if (node === this.#c.nodeId) return this.#listener?.connection(connectionId, call) ?? null
    const id = randomUUID()
    const answer = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id)
        reject(GatecastError.unavailable('the node holding the connection did not answer'))
      }, CALL_TIMEOUT_MS).unref()
      this.#calls.set(id, { resolve, timer })
    })
    // the timer may fire while the publish below still waits on Redis: that rejection
    // must never go unhandled (it would end the process); it is awaited below
    answer.catch(() => {})
    const msg: NodeMessage = { t: 'q', id, from: this.#c.nodeId, connectionId, call }
    let receivers: number
    try {
      receivers = await this.#c.publish(this.#c.keys.nodeTopic(node), JSON.stringify(msg))
    } catch (err) {
      this.#settle(id, null)
      throw err
    }
    // nobody listens on that node's topic: the node is gone, and its connections with it
    if (receivers === 0) this.#settle(id, null)
    return await answer
  }

  #settle (id: string, answer: Answer): void {
    const call = this.#calls.get(id)
    if (call === undefined) return
    this.#calls.delete(id)
    clearTimeout(call.timer)
    call.resolve(answer)
  }

  #onNodeMessage (listener: BrokerListener, msg: NodeMessage): void {
    if (msg.t === 'a') {
      this.#settle(msg.id, msg.answer)
      return
    }
    const reply: NodeMessage = { t: 'a', id: msg.id, answer: listener.connection(msg.connectionId, msg.call) }
    this.#c.publish(this.#c.keys.nodeTopic(msg.from), JSON.stringify(reply)).catch(this.#c.onError)
  }
}
