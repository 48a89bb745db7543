// The node registry: each node beats into a hash; a node that stops beating
// (crashed without shutdown) is reaped by one of the others, and a node that
// shuts down reaps itself.
import type { RedisConnection } from './connection.ts'
import type { RedisPresence } from './presence.ts'

export class NodeHeartbeat {
  readonly #c: RedisConnection
  readonly #presence: RedisPresence
  readonly #timeoutMs: number
  #timer: NodeJS.Timeout | null = null
  // when this node's own beat last got through
  #lastBeat = 0

  constructor (c: RedisConnection, presence: RedisPresence, timeoutMs: number) {
    this.#c = c
    this.#presence = presence
    this.#timeoutMs = timeoutMs
  }

  async start (): Promise<void> {
    await this.#beat()
    this.#timer = setInterval(() => { this.#beat().catch(this.#c.onError) }, Math.max(100, Math.floor(this.#timeoutMs / 3))).unref()
  }

  /** Stops beating; when Redis is there, takes this node's connections out of presence now. */
  async leave (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    if (this.#c.isReady()) await this.#reap(this.#c.nodeId).catch(this.#c.onError)
  }

  async #beat (): Promise<void> {
    const { client, keys: k, nodeId } = this.#c
    if (!this.#c.isReady()) return
    const now = Date.now()
    const t0 = performance.now()
    await client.hset(k.nodes(), nodeId, now)
    this.#c.recordRtt(performance.now() - t0)
    // this node could not beat for a while itself (the heartbeats' shard failing over, a
    // network cut): the others could not either, and their beats are as stale as its own.
    // Judge no one this round; they beat again before the next.
    const blind = this.#lastBeat !== 0 && now - this.#lastBeat >= this.#timeoutMs
    this.#lastBeat = now
    if (blind) return
    const nodes = await client.hgetall(k.nodes())
    for (const [node, at] of Object.entries(nodes)) {
      if (node === nodeId || now - Number(at) < this.#timeoutMs) continue
      // one reaper per dead node
      const lock = await client.set(k.reap(node), nodeId, 'PX', this.#timeoutMs, 'NX')
      if (lock === 'OK') await this.#reap(node)
    }
  }

  async #reap (node: string): Promise<void> {
    const connections = await this.#presence.reap(node)
    await this.#c.client.hdel(this.#c.keys.nodes(), node)
    // its last report for the console goes with it
    await this.#c.client.hdel(this.#c.keys.nodeReports(), node)
    if (connections > 0) this.#c.log.info({ node, connections }, 'removed a dead node from presence')
  }
}
