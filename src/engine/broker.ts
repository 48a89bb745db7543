// The broker: channel fan-out to every node, history and recovery, and the
// control messages (direct frames, kicks, revocations) every node must see.
import type { ConnectionCall, ConnectionInfo, ControlMessage, HistoryOptions, PublishInput, Recovery, StoredMessage } from './types.ts'

/** What a node hands its deliveries to (the hub). */
export interface BrokerListener {
  /**
   * A frame for every local socket of `channel`; seq 0 marks frames that are
   * not in history (presence). ts: publish time in ms, 0 when unknown.
   */
  deliver (channel: string, seq: number, frame: string, ts: number): void
  control (msg: ControlMessage): void
  /** a call for one local connection: its info (or true) when it is here, null when not */
  connection (connectionId: string, call: ConnectionCall): ConnectionInfo | true | null
}

export interface Broker {
  /** this node starts (stops) receiving deliveries for the channel */
  subscribe (channel: string): Promise<void>
  unsubscribe (channel: string): Promise<void>
  /** appends to history (when enabled) and fans out to every node; resolves to the message id */
  publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string>
  /** fans out a frame that is not kept in history */
  publishTransient (channel: string, frame: string): Promise<void>
  /** every message after `since`, or `recovered: false` and none: never a partial replay */
  recover (channel: string, since: string): Promise<Recovery>
  history (channel: string, opts: { since?: string, limit: number }): Promise<{ messages: StoredMessage[], recovered: boolean }>
  /** delivered to every node, this one included */
  control (msg: ControlMessage): Promise<void>
  /** a new id for a connection of this node: per-connection calls find their node by it */
  connectionId (): string
  /**
   * Runs the call on the node that holds the connection; resolves to what that
   * node answered, or null when no node has it.
   */
  connection (connectionId: string, call: ConnectionCall): Promise<ConnectionInfo | true | null>
}
