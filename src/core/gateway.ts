// The gateway of one node (Centrifuge's Node): the operations of the server API
// and of the `gatecast` decorator, the hooks, and the wiring of hub, sessions
// and engine. Cluster-wide through the engine.
import type { Logger } from '../config/logger.ts'
import type { GatecastConfig } from '../config/config.ts'
import type { AuthService } from '../auth/service.ts'
import type { ChannelSummary, ConnectionCall, ConnectionInfo, Engine, PresenceEntry, StoredMessage } from '../engine/types.ts'
import { isValidId } from '../engine/ids.ts'
import { GatecastError } from '../protocol/errors.ts'
import { admit, giveUp, type Admission, type AdmissionRules, type UpgradeRequest } from './admission.ts'
import { ChannelRules, isValidChannel } from './channels.ts'
import { Hooks, type BackendHooks, type OnCloseHook, type OnConnectHook, type OnPublishHook, type OnSubscribeHook } from './hooks.ts'
import { Hub } from './hub.ts'
import { Publisher } from './publisher.ts'
import type { Session } from './session.ts'
import { Sessions } from './sessions.ts'
import type { Stats } from './stats.ts'
import type { Transport } from './transport.ts'

export type { Admission, UpgradeRequest } from './admission.ts'
export type { BackendHooks, CloseContext, ConnectContext, ConnectResult, PublishVerdict, OnCloseHook, OnConnectHook, OnPublishHook, OnSubscribeHook, PublishContext, SubscribeContext } from './hooks.ts'
export type { ConnectionInfo } from '../engine/types.ts'

export interface UserInfo {
  userId: string
  online: boolean
  connections: number
  channels: string[]
}

export const CONNECTION_ID = /^[A-Za-z0-9_.-]{1,100}$/

function checkChannel (channel: string): void {
  if (!isValidChannel(channel)) throw GatecastError.badChannel()
}

export class Gatecast {
  readonly rules: ChannelRules
  readonly hub: Hub
  readonly #engine: Engine
  readonly #hooks = new Hooks()
  readonly #publisher: Publisher
  readonly #sessions: Sessions
  readonly #stats: Stats
  readonly #admission: AdmissionRules
  #shuttingDown = false

  constructor (engine: Engine, auth: AuthService, config: GatecastConfig, log: Logger, stats: Stats) {
    this.#engine = engine
    this.#stats = stats
    this.rules = new ChannelRules({ historySize: config.historySize, historyTtl: config.historyTtl }, config.channels)
    this.#publisher = new Publisher(engine.broker, this.#hooks)
    this.hub = new Hub({
      broker: engine.broker,
      stats,
      log,
      pingInterval: config.wsPingInterval,
      expiryGrace: config.wsExpiryGrace,
      onPresenceLost: (channel, userId) => { this.#sessions.left(channel, userId) }
    })
    this.#sessions = new Sessions({
      engine,
      auth,
      rules: this.rules,
      hooks: this.#hooks,
      publisher: this.#publisher,
      hub: this.hub,
      stats,
      log,
      messageRate: config.wsMessageRate,
      sendBuffer: config.wsSendBuffer,
      channelsPerSocket: config.wsChannelsPerSocket
    })
    this.#admission = {
      engine,
      auth,
      rules: this.rules,
      hooks: this.#hooks,
      allowedOrigins: config.allowedOrigins,
      socketsPerUser: config.wsSocketsPerUser,
      shuttingDown: () => this.#shuttingDown,
      releaseSlot: (userId, connectionId) => this.#sessions.releaseSlot(userId, connectionId),
      log
    }
    stats.sources = { sockets: () => this.hub.size, subscriptionsByNamespace: () => this.hub.subscriptionsByNamespace(), engine: () => engine.health() }
  }

  get shuttingDown (): boolean {
    return this.#shuttingDown
  }

  async start (): Promise<void> {
    await this.#engine.start(this.hub)
  }

  // --- hooks --------------------------------------------------------------------

  onConnect (hook: OnConnectHook): void { this.#hooks.connect.push(hook) }
  onSubscribe (hook: OnSubscribeHook): void { this.#hooks.subscribe.push(hook) }
  onPublish (hook: OnPublishHook): void { this.#hooks.publish.push(hook) }
  onClose (hook: OnCloseHook): void { this.#hooks.close.push(hook) }
  /** The application backend (BACKEND_URL), asked after the hooks above. */
  useBackend (backend: BackendHooks): void { this.#hooks.useBackend(backend) }

  // --- server operations (API and decorator) ---------------------------------------

  /** Publishes as the server (`from: null`) to every socket on the channel, cluster-wide. */
  async publish (channel: string, data: unknown): Promise<{ id: string }> {
    checkChannel(channel)
    const id = await this.#publisher.publish(channel, data, null, null, this.rules.resolve(channel))
    this.#stats.publishedByApi++
    return { id }
  }

  async sendToUser (userId: string, data: unknown): Promise<void> {
    await this.#engine.broker.control({ kind: 'user', userId, frame: this.#publisher.directFrame(data) })
  }

  async broadcast (data: unknown): Promise<void> {
    await this.#engine.broker.control({ kind: 'all', frame: this.#publisher.directFrame(data) })
  }

  async disconnectUser (userId: string): Promise<void> {
    await this.#engine.broker.control({ kind: 'kick', userId })
  }

  async presence (channel: string): Promise<{ channel: string, users: PresenceEntry[] }> {
    checkChannel(channel)
    return { channel, users: await this.#engine.presence.presence(channel) }
  }

  async history (channel: string, opts: { since?: string, limit?: number } = {}): Promise<{ messages: StoredMessage[], recovered: boolean }> {
    checkChannel(channel)
    if (opts.since !== undefined && !isValidId(opts.since)) throw GatecastError.badSince()
    return this.#engine.broker.history(channel, { since: opts.since, limit: opts.limit ?? this.rules.resolve(channel).historySize })
  }

  async channels (): Promise<ChannelSummary[]> {
    return this.#engine.presence.channels()
  }

  async userStatus (userId: string): Promise<UserInfo> {
    const s = await this.#engine.presence.userStatus(userId)
    return { userId, online: s.connections > 0, connections: s.connections, channels: s.channels }
  }

  // --- subscriptions and single connections (GatewayWorker's joinGroup, sendToClient, closeClient) ---

  /** Every socket of the user, on every node, subscribes to the channel (`subscribed` `by: "server"`). */
  async subscribeUser (userId: string, channel: string): Promise<void> {
    checkChannel(channel)
    await this.#engine.broker.control({ kind: 'join', userId, channel })
  }

  /** Every socket of the user leaves the channel (`unsubscribed` `reason: "server"`). */
  async unsubscribeUser (userId: string, channel: string): Promise<void> {
    checkChannel(channel)
    await this.#engine.broker.control({ kind: 'leave', userId, channel })
  }

  /** The connection's user, channels and opening time; null when no node has it. */
  async connection (connectionId: string): Promise<ConnectionInfo | null> {
    const answer = await this.#connectionCall(connectionId, { op: 'info' })
    return answer === true ? null : answer
  }

  /** false when no node has the connection */
  async subscribeConnection (connectionId: string, channel: string): Promise<boolean> {
    checkChannel(channel)
    return await this.#connectionCall(connectionId, { op: 'subscribe', channel }) !== null
  }

  async unsubscribeConnection (connectionId: string, channel: string): Promise<boolean> {
    checkChannel(channel)
    return await this.#connectionCall(connectionId, { op: 'unsubscribe', channel }) !== null
  }

  /** A `direct` frame to that one socket; false when no node has it. */
  async sendToConnection (connectionId: string, data: unknown): Promise<boolean> {
    return await this.#connectionCall(connectionId, { op: 'send', frame: this.#publisher.directFrame(data) }) !== null
  }

  /** Closes that one socket with 4403; false when no node has it. */
  async disconnectConnection (connectionId: string): Promise<boolean> {
    return await this.#connectionCall(connectionId, { op: 'close' }) !== null
  }

  #connectionCall (connectionId: string, call: ConnectionCall): Promise<ConnectionInfo | true | null> {
    // ids are the engine's; anything longer or stranger was never one
    if (!CONNECTION_ID.test(connectionId)) return Promise.resolve(null)
    return this.#engine.broker.connection(connectionId, call)
  }

  // --- connections -------------------------------------------------------------------

  /** Every check before an upgrade; throws the GatecastError the client gets as HTTP. */
  async admit (req: UpgradeRequest): Promise<Admission> {
    return admit(this.#admission, req)
  }

  /** Takes an upgraded socket: `ready`, the replay when `since` was given, then live frames. */
  attach (transport: Transport, admission: Admission): Promise<Session> {
    return this.#sessions.attach(transport, admission)
  }

  /** An admitted upgrade that never became a socket: its user's socket slot is given back. */
  abandon (admission: Admission): void {
    giveUp(this.#admission, admission).catch(() => {})
  }

  // --- shutdown ----------------------------------------------------------------------

  async shutdown (deadlineMs = 10_000): Promise<void> {
    if (this.#shuttingDown) return
    this.#shuttingDown = true
    await this.hub.closeAll(deadlineMs)
    await this.#sessions.settled()
  }
}
