// Presence in Redis: per channel a hash user → subscription count, per user a
// hash channel → count and a socket counter, the channel index, and per node
// what it holds of each, so a dead node's share can be taken out (reap). On a
// Redis Cluster no script spans two slots: the channel list is a scan of the
// masters, and a node's share of a user's socket slots lives in the user's slot.
import type { PresenceListener, PresenceManager } from '../presence.ts'
import type { ChannelSummary, ConnectionRef, PresenceEntry, UserStatus } from '../types.ts'
import type { RedisConnection } from './connection.ts'

export class RedisPresence implements PresenceManager {
  readonly #c: RedisConnection
  #listener: PresenceListener | null = null

  constructor (c: RedisConnection) {
    this.#c = c
  }

  attach (listener: PresenceListener | null): void {
    this.#listener = listener
  }

  async #track (ref: ConnectionRef, delta: 1 | -1): Promise<number> {
    const { keys: k, scripts: s, nodeId } = this.#c
    const [n] = await Promise.all([
      (this.#c.cluster
        ? s.count(k.users(ref.channel), ref.userId, delta)
        : s.channelCount(k.users(ref.channel), k.channels(), ref.userId, delta, ref.channel)) as Promise<number>,
      s.count(k.user(ref.userId), ref.channel, delta),
      s.count(k.nodeConns(nodeId), `${ref.channel}\n${ref.userId}`, delta)
    ])
    return n
  }

  // an empty channel marks the user's sockets in the node's share
  async reserveSocket (userId: string, max: number): Promise<boolean> {
    const { client, keys: k, scripts: s, nodeId } = this.#c
    if (!this.#c.cluster) return await s.reserve(k.sockets(userId), k.nodeConns(nodeId), max, `\n${userId}`) === 1
    // listed first, so a reaper that finds the node dead finds this user too (a user listed
    // without a slot costs the reaper one look)
    await client.sadd(k.nodeUsers(nodeId), userId)
    return await s.reserve(k.sockets(userId), k.userNodes(userId), max, nodeId) === 1
  }

  async releaseSocket (userId: string): Promise<void> {
    const { keys: k, scripts: s, nodeId } = this.#c
    if (this.#c.cluster) await s.releaseSocket(k.sockets(userId), k.userNodes(userId), nodeId)
    else await s.releaseSocket(k.sockets(userId), k.nodeConns(nodeId), `\n${userId}`)
  }

  async addConnection (ref: ConnectionRef): Promise<{ joined: boolean }> {
    return { joined: await this.#track(ref, 1) === 1 }
  }

  async removeConnection (ref: ConnectionRef): Promise<{ left: boolean }> {
    return { left: await this.#track(ref, -1) <= 0 }
  }

  async presence (channel: string): Promise<PresenceEntry[]> {
    const users = await this.#c.client.hgetall(this.#c.keys.users(channel))
    return Object.entries(users).map(([userId, n]) => ({ userId, connections: Number(n) }))
  }

  async channels (): Promise<ChannelSummary[]> {
    const { client, keys: k } = this.#c
    const names = this.#c.cluster ? await this.#scanChannels() : await client.smembers(k.channels())
    // one command each (sent together): on a cluster the channels are on many shards
    const counts = await Promise.all(names.map(name => client.hvals(k.users(name))))
    return names.map((name, i) => {
      const vals = counts[i]
      return { name, users: vals.length, connections: vals.reduce((s, v) => s + Number(v), 0) }
    }).filter(c => c.users > 0).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  }

  /** Cluster: the channels with presence, from a scan of every master's keys. */
  async #scanChannels (): Promise<string[]> {
    const client = this.#c.client
    if (!('nodes' in client)) return []
    const pattern = this.#c.keys.usersPattern()
    const open = pattern.indexOf('{ch:') + 4
    const names = new Set<string>()
    await Promise.all(client.nodes('master').map(async (master) => {
      let cursor = '0'
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
        cursor = next
        for (const key of keys) names.add(key.slice(open, key.length - '}:users'.length))
      } while (cursor !== '0')
    }))
    return [...names]
  }

  async userStatus (userId: string): Promise<UserStatus> {
    const { client, keys: k } = this.#c
    const [sockets, chans] = await Promise.all([client.get(k.sockets(userId)), client.hgetall(k.user(userId))])
    return { connections: Math.max(0, Number(sockets ?? 0)), channels: Object.keys(chans) }
  }

  /**
   * Removes a node's sockets and subscriptions from presence and user status; for another
   * node's users who are gone everywhere, the listener sends leave frames.
   * Resolves to how many (channel, user) entries the node held, socket counts included.
   */
  async reap (node: string): Promise<number> {
    const { client, keys: k, scripts: s, nodeId } = this.#c
    const conns = await client.hgetall(k.nodeConns(node))
    let held = 0
    for (const [field, count] of Object.entries(conns)) {
      const nl = field.indexOf('\n')
      const channel = field.slice(0, nl)
      const userId = field.slice(nl + 1)
      const n = Number(count)
      held++
      if (channel === '') {
        await s.release(k.sockets(userId), n)
        continue
      }
      const [left] = await Promise.all([
        (this.#c.cluster
          ? s.count(k.users(channel), userId, -n)
          : s.channelCount(k.users(channel), k.channels(), userId, -n, channel)) as Promise<number>,
        s.count(k.user(userId), channel, -n)
      ])
      if (left <= 0 && node !== nodeId) this.#listener?.presenceLost(channel, userId)
    }
    if (this.#c.cluster) {
      // socket slots: every user the node ever listed, each in one step in the user's slot
      const users = await client.smembers(k.nodeUsers(node))
      const freed = await Promise.all(users.map(userId => s.reapSockets(k.sockets(userId), k.userNodes(userId), node) as Promise<number>))
      held += freed.filter(n => n > 0).length
      await client.del(k.nodeUsers(node))
    }
    await client.del(k.nodeConns(node))
    return held
  }
}
