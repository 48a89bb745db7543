// Presence: who is on which channel, cluster-wide, counted per subscription,
// and how many sockets each user holds.
import type { ChannelSummary, ConnectionRef, PresenceEntry, UserStatus } from './types.ts'

export interface PresenceListener {
  /** a dead node's last connection of this user on this channel was reaped */
  presenceLost (channel: string, userId: string): void
}

export interface PresenceManager {
  /**
   * Takes one of the user's `max` socket slots, cluster-wide; false when all are
   * taken. Atomic: concurrent upgrades never get more than `max` between them.
   */
  reserveSocket (userId: string, max: number): Promise<boolean>
  /** gives a slot back (the socket closed, or its upgrade was refused after the reservation) */
  releaseSocket (userId: string): Promise<void>
  /** one subscription of a connection; joined: the user's first on the channel, cluster-wide */
  addConnection (ref: ConnectionRef): Promise<{ joined: boolean }>
  /** left: the user's last subscription to the channel went away */
  removeConnection (ref: ConnectionRef): Promise<{ left: boolean }>
  presence (channel: string): Promise<PresenceEntry[]>
  channels (): Promise<ChannelSummary[]>
  userStatus (userId: string): Promise<UserStatus>
}
