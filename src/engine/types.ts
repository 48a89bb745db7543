// The engine is everything that must be shared between nodes: channel fan-out,
// history, presence, and auth state (revocations, refresh tokens, counters),
// split by role (broker.ts, presence.ts, auth-store.ts); memory/ serves one
// process, redis/ a cluster. These are the data types they share.
import type { AuthStore } from './auth-store.ts'
import type { Broker, BrokerListener } from './broker.ts'
import type { NodeRegistry } from './nodes.ts'
import type { PresenceListener, PresenceManager } from './presence.ts'

export interface HistoryOptions {
  historySize: number
  /** seconds */
  historyTtl: number
}

export interface PublishInput {
  from: string | null
  /** already serialised JSON: serialised once per publish, never per socket */
  dataJson: string
  ts: number
}

export interface StoredMessage {
  id: string
  channel: string
  from: string | null
  data: unknown
  ts: number
}

export interface Recovery {
  recovered: boolean
  /** message frames after `since`, oldest first; empty unless recovered */
  frames: string[]
  /** sequence of the newest message at the time of the read: live frames at or below it were replayed */
  top: number
}

export type ControlMessage =
  | { kind: 'user', userId: string, frame: string }
  | { kind: 'all', frame: string }
  | { kind: 'kick', userId: string }
  | { kind: 'revoke', userId: string, jti: string }
  /** every socket of the user subscribes to (leaves) the channel, server-side */
  | { kind: 'join' | 'leave', userId: string, channel: string }

/** What the server API asks of one connection, on whichever node holds it. */
export type ConnectionCall =
  | { op: 'info' }
  | { op: 'subscribe' | 'unsubscribe', channel: string }
  | { op: 'send', frame: string }
  | { op: 'close' }

export interface ConnectionInfo {
  connectionId: string
  userId: string
  channels: string[]
  /** ms since the epoch */
  openedAt: number
}

export interface ConnectionRef {
  connectionId: string
  userId: string
  channel: string
}

export interface ChannelSummary {
  name: string
  connections: number
  users: number
}

export interface PresenceEntry {
  userId: string
  connections: number
}

export interface UserStatus {
  /** open sockets, whatever they are subscribed to */
  connections: number
  channels: string[]
}

export interface RefreshRecord {
  userId: string
  name?: string
  roles?: string[]
  channels?: string[]
  family: string
}

/** A node's listener for everything the engine delivers. */
export interface EngineListener extends BrokerListener, PresenceListener {}

/**
 * The engine of one node: a broker, a presence manager, an auth store and a
 * node registry, each an interface of its own, with the connection they share.
 */
export interface Engine {
  readonly broker: Broker
  readonly presence: PresenceManager
  readonly store: AuthStore
  /** the live nodes, their reports and questions to all of them (for operators) */
  readonly nodes: NodeRegistry
  start (listener: EngineListener): Promise<void>
  close (): Promise<void>
  /** false while the backing store is unreachable */
  isReady (): boolean
  /** for metrics: errors so far and the last round trip to the store */
  health (): { errors: number, rttMs: number | null }
}
