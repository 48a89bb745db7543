// In-process presence: subscription counts per channel and user, and socket
// counts per user. Only one direction is kept: each subscription costs one map
// entry, and a user's channels (an API call, rare) are found by a scan.
import type { PresenceManager } from '../presence.ts'
import type { ChannelSummary, ConnectionRef, PresenceEntry, UserStatus } from '../types.ts'

export class MemoryPresence implements PresenceManager {
  // channel → user → subscription count
  readonly #byChannel = new Map<string, Map<string, number>>()
  readonly #sockets = new Map<string, number>()

  async reserveSocket (userId: string, max: number): Promise<boolean> {
    const n = this.#sockets.get(userId) ?? 0
    if (n >= max) return false
    this.#sockets.set(userId, n + 1)
    return true
  }

  async releaseSocket (userId: string): Promise<void> {
    const n = this.#sockets.get(userId) ?? 0
    if (n <= 1) this.#sockets.delete(userId)
    else this.#sockets.set(userId, n - 1)
  }

  /** true while any connection is on the channel */
  occupied (channel: string): boolean {
    return this.#byChannel.has(channel)
  }

  async addConnection (ref: ConnectionRef): Promise<{ joined: boolean }> {
    let users = this.#byChannel.get(ref.channel)
    if (users === undefined) this.#byChannel.set(ref.channel, (users = new Map()))
    const n = (users.get(ref.userId) ?? 0) + 1
    users.set(ref.userId, n)
    return { joined: n === 1 }
  }

  async removeConnection (ref: ConnectionRef): Promise<{ left: boolean }> {
    const users = this.#byChannel.get(ref.channel)
    const n = users?.get(ref.userId)
    if (users === undefined || n === undefined) return { left: false }
    if (n <= 1) {
      users.delete(ref.userId)
      if (users.size === 0) this.#byChannel.delete(ref.channel)
    } else {
      users.set(ref.userId, n - 1)
    }
    return { left: n <= 1 }
  }

  async presence (channel: string): Promise<PresenceEntry[]> {
    const users = this.#byChannel.get(channel)
    return users === undefined ? [] : [...users].map(([userId, connections]) => ({ userId, connections }))
  }

  async channels (): Promise<ChannelSummary[]> {
    return [...this.#byChannel].map(([name, users]) => {
      let connections = 0
      for (const n of users.values()) connections += n
      return { name, connections, users: users.size }
    })
  }

  async userStatus (userId: string): Promise<UserStatus> {
    const channels: string[] = []
    for (const [channel, users] of this.#byChannel) if (users.has(userId)) channels.push(channel)
    return { connections: this.#sockets.get(userId) ?? 0, channels }
  }
}
