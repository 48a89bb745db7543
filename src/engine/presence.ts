// Presence: who is on which channel, cluster-wide, counted per connection.
import type { ChannelSummary, ConnectionRef, PresenceEntry, UserStatus } from './types.ts'

export interface PresenceListener {
  /** a dead node's last connection of this user on this channel was reaped */
  presenceLost (channel: string, userId: string): void
}

export interface PresenceManager {
  /** joined: the user's first connection on the channel, cluster-wide */
  addConnection (ref: ConnectionRef): Promise<{ joined: boolean }>
  /** left: the user's last connection on the channel went away */
  removeConnection (ref: ConnectionRef): Promise<{ left: boolean }>
  presence (channel: string): Promise<PresenceEntry[]>
  channels (): Promise<ChannelSummary[]>
  userStatus (userId: string): Promise<UserStatus>
}
