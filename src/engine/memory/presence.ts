// In-process presence: connection counts per channel and user, both ways.
import type { PresenceManager } from '../presence.ts'
import type { ChannelSummary, ConnectionRef, PresenceEntry, UserStatus } from '../types.ts'

export class MemoryPresence implements PresenceManager {
  // channel → user → connection count, and user → channel → count
  readonly #byChannel = new Map<string, Map<string, number>>()
  readonly #byUser = new Map<string, Map<string, number>>()

  /** true while any connection is on the channel */
  occupied (channel: string): boolean {
    return this.#byChannel.has(channel)
  }

  async addConnection (ref: ConnectionRef): Promise<{ joined: boolean }> {
    const users = this.#byChannel.get(ref.channel) ?? new Map<string, number>()
    this.#byChannel.set(ref.channel, users)
    const n = (users.get(ref.userId) ?? 0) + 1
    users.set(ref.userId, n)
    const chans = this.#byUser.get(ref.userId) ?? new Map<string, number>()
    this.#byUser.set(ref.userId, chans)
    chans.set(ref.channel, (chans.get(ref.channel) ?? 0) + 1)
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
    const chans = this.#byUser.get(ref.userId)
    const c = chans?.get(ref.channel)
    if (chans !== undefined && c !== undefined) {
      if (c <= 1) chans.delete(ref.channel)
      else chans.set(ref.channel, c - 1)
      if (chans.size === 0) this.#byUser.delete(ref.userId)
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
    const chans = this.#byUser.get(userId)
    if (chans === undefined) return { connections: 0, channels: [] }
    let connections = 0
    for (const n of chans.values()) connections += n
    return { connections, channels: [...chans.keys()] }
  }
}
