// The engine is everything that must be shared between nodes: channel fan-out,
// history, presence, and auth state (revocations, refresh tokens, counters).
// Routes and the hub only see this interface; memory.ts serves one process,
// redis.ts a cluster.

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

export interface EngineListener {
  /**
   * A frame for every local socket of `channel`; seq 0 marks frames that are
   * not in history (presence). ts: publish time in ms, 0 when unknown.
   */
  deliver (channel: string, seq: number, frame: string, ts: number): void
  control (msg: ControlMessage): void
  /** a dead node's last connection of this user on this channel was reaped */
  presenceLost (channel: string, userId: string): void
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

export interface Engine {
  start (listener: EngineListener): Promise<void>
  close (): Promise<void>
  /** false while the backing store is unreachable */
  isReady (): boolean
  /** for metrics: errors so far and the last round trip to the store */
  health (): { errors: number, rttMs: number | null }

  /** this node starts (stops) receiving deliveries for the channel */
  subscribe (channel: string): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** appends to history (when enabled) and fans out to every node; resolves to the message id */
  publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string>
  /** fans out a frame that is not kept in history */
  publishTransient (channel: string, frame: string): Promise<void>
  recover (channel: string, since: string): Promise<Recovery>
  history (channel: string, opts: { since?: string, limit: number }): Promise<{ messages: StoredMessage[], recovered: boolean }>
  /** delivered to every node, this one included */
  control (msg: ControlMessage): Promise<void>

  /** joined: the user's first connection on the channel, cluster-wide */
  addConnection (ref: ConnectionRef): Promise<{ joined: boolean }>
  /** left: the user's last connection on the channel went away */
  removeConnection (ref: ConnectionRef): Promise<{ left: boolean }>
  presence (channel: string): Promise<PresenceEntry[]>
  channels (): Promise<ChannelSummary[]>
  userStatus (userId: string): Promise<UserStatus>

  revokeToken (jti: string, ttlSeconds: number): Promise<void>
  isTokenRevoked (jti: string): Promise<boolean>
  saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void>
  /** reads a refresh token without using it */
  peekRefreshToken (key: string): Promise<RefreshRecord | null>
  /** marks the token used; `reused` when it had been used before */
  useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null>
  revokeFamily (family: string, ttlSeconds: number): Promise<void>
  isFamilyRevoked (family: string): Promise<boolean>
  /** counts a hit in a fixed window and returns the count so far */
  hit (key: string, windowSeconds: number): Promise<number>
  hits (key: string): Promise<number>
  clearHits (key: string): Promise<void>
}
