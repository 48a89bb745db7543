// The cluster as the admin console shows it: every live node with its latest
// report, the channels with their sockets, users and messages per second, one
// channel's presence and last messages, one user's sockets on every node, and
// the last minutes of messages and sockets. Built from what the engine
// already answers (presence, history, user status) and the nodes' reports;
// the overview is shared by every console watching this node, computed at most
// about once a second whoever asks.
import type { NodeRegistry } from '../engine/nodes.ts'
import type { ConnectionInfo, PresenceEntry, StoredMessage } from '../engine/types.ts'
import type { Gatecast, UserInfo } from './gateway.ts'
import type { NodeQuestion, NodeSampler, NodeSnapshot, SeriesPoint } from './node-stats.ts'

export type { NodeSnapshot, SeriesPoint } from './node-stats.ts'

/** what a node's report says, without its channel rates and users (they are merged into the cluster's lists) */
export type NodeStats = Omit<NodeSnapshot, 'nodeId' | 'rates' | 'userSample'>

export interface NodeView {
  nodeId: string
  /** the node that answers this console */
  self: boolean
  /** ms since the epoch of its report (or its heartbeat, without one) */
  at: number
  /** null: the node is live but reports nothing (its console is off, or it just started) */
  stats: NodeStats | null
}

export interface ChannelView {
  name: string
  connections: number
  users: number
  /** messages per second: the largest count of any node with a subscriber on it (each of them sees every message) */
  rate: number
}

export interface UserView {
  userId: string
  /** sockets, summed over the nodes whose sample has the user */
  connections: number
}

export interface AdminOverview {
  at: number
  totals: {
    nodes: number
    connections: number
    /** messages published per second, cluster-wide (each publish is counted by the one node it went through) */
    published: number
    channels: number
  }
  nodes: NodeView[]
  /** the busiest channels first, then the fullest; `total` counts every channel with a socket */
  channels: { total: number, list: ChannelView[] }
  /** a sample of online users; `complete` false when some node has more than its sample */
  users: { complete: boolean, list: UserView[] }
}

export interface HistoryLine {
  id: string
  from: string | null
  ts: number
  /** the message's data as JSON, cut to a readable length */
  text: string
  truncated: boolean
}

export interface ChannelDetail {
  name: string
  connections: number
  users: number
  rate: number
  /** fullest first, at most PRESENCE_KEPT of them */
  presence: PresenceEntry[]
  /** oldest first, the last HISTORY_KEPT messages */
  history: HistoryLine[]
}

export interface SocketView extends ConnectionInfo {
  nodeId: string
}

export interface UserDetail extends UserInfo {
  /** the user's sockets found on the nodes that answered, oldest first */
  sockets: SocketView[]
}

export interface AdminSnapshot {
  overview: AdminOverview
  channel: ChannelDetail | null
  user: UserDetail | null
}

export interface AdminConsoleOptions {
  gatecast: Gatecast
  nodes: NodeRegistry
  sampler: NodeSampler
}

export const CHANNELS_KEPT = 200
export const PRESENCE_KEPT = 200
export const HISTORY_KEPT = 20
export const SOCKETS_KEPT = 200
const USERS_KEPT = 200
// the JSON of one message's data shown in the console
const TEXT_KEPT = 500
// a node that has not answered by then is left out of a user's sockets
const ASK_TIMEOUT_MS = 800
// one overview serves every console that asks within this (each asks once a second)
const OVERVIEW_REUSE_MS = 900

function parseSnapshot (text: string | null): NodeSnapshot | null {
  if (text === null) return null
  try {
    const s = JSON.parse(text) as NodeSnapshot
    // a node of another version may report another shape: show it as reporting nothing
    return typeof s === 'object' && s !== null && Array.isArray(s.rates) && Array.isArray(s.userSample) && typeof s.memory === 'object' ? s : null
  } catch {
    return null
  }
}

function statsOf (s: NodeSnapshot): NodeStats {
  const { nodeId: _n, rates: _r, userSample: _u, ...stats } = s
  return stats
}

function historyLine (m: StoredMessage): HistoryLine {
  const json = JSON.stringify(m.data) ?? 'null'
  const truncated = json.length > TEXT_KEPT
  return { id: m.id, from: m.from, ts: m.ts, text: truncated ? json.slice(0, TEXT_KEPT) : json, truncated }
}

/**
 * Sums the nodes' series second by second. Nodes tick at their own moments, so
 * a node may have no point for a second, or skip one: its last value carries
 * over until its next point.
 */
export function mergeSeries (perNode: SeriesPoint[][]): SeriesPoint[] {
  const seconds = new Set<number>()
  for (const points of perNode) for (const [s] of points) seconds.add(s)
  const all = [...seconds].sort((a, b) => a - b)
  const out: SeriesPoint[] = all.map(s => [s, 0, 0])
  for (const points of perNode) {
    const sorted = points.slice().sort((a, b) => a[0] - b[0])
    let i = 0
    let last: SeriesPoint | null = null
    for (const point of out) {
      while (i < sorted.length && sorted[i][0] <= point[0]) {
        last = sorted[i++]
        // a count of messages belongs to its own second (two ticks may round into one)
        if (last[0] === point[0]) point[1] += last[1]
      }
      // sockets stay what they were until the node's next point
      if (last !== null) point[2] += last[2]
    }
  }
  return out
}

export class AdminConsole {
  readonly #o: AdminConsoleOptions
  #overview: { at: number, promise: Promise<AdminOverview> } | null = null
  // the last overview's rates, for a channel's detail
  #rates = new Map<string, number>()

  constructor (o: AdminConsoleOptions) {
    this.#o = o
  }

  get nodeId (): string {
    return this.#o.nodes.nodeId
  }

  /** the overview, reused while it is under a second old */
  overview (): Promise<AdminOverview> {
    const now = Date.now()
    const kept = this.#overview
    if (kept !== null && now - kept.at < OVERVIEW_REUSE_MS) return kept.promise
    const promise = this.#buildOverview()
    this.#overview = { at: now, promise }
    // a failure is not kept: the next tick tries again
    promise.catch(() => { if (this.#overview?.promise === promise) this.#overview = null })
    return promise
  }

  async #buildOverview (): Promise<AdminOverview> {
    const { gatecast, nodes, sampler } = this.#o
    const [reports, channels] = await Promise.all([nodes.list(), gatecast.channels()])
    const self = nodes.nodeId
    const rates = new Map<string, number>()
    const users = new Map<string, number>()
    let complete = true
    const totals = { nodes: reports.length, connections: 0, published: 0, channels: channels.length }
    const views: NodeView[] = []
    for (const r of reports) {
      // this node's own numbers are at hand, fresher than its report
      const snap = r.nodeId === self ? sampler.current() : parseSnapshot(r.report)
      views.push({ nodeId: r.nodeId, self: r.nodeId === self, at: snap?.at ?? r.at, stats: snap === null ? null : statsOf(snap) })
      if (snap === null) continue
      totals.connections += snap.connections
      totals.published += snap.published
      for (const [channel, rate] of snap.rates) rates.set(channel, Math.max(rates.get(channel) ?? 0, rate))
      for (const [userId, n] of snap.userSample) users.set(userId, (users.get(userId) ?? 0) + n)
      if (snap.users > snap.userSample.length) complete = false
    }
    totals.published = Math.round(totals.published * 100) / 100
    this.#rates = rates
    const list = channels.map(c => ({ name: c.name, connections: c.connections, users: c.users, rate: rates.get(c.name) ?? 0 }))
      .sort((a, b) => b.rate - a.rate || b.connections - a.connections || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const userList = [...users].map(([userId, connections]) => ({ userId, connections }))
      .sort((a, b) => b.connections - a.connections || (a.userId < b.userId ? -1 : 1))
    if (userList.length > USERS_KEPT) complete = false
    return {
      at: Date.now(),
      totals,
      nodes: views,
      channels: { total: channels.length, list: list.slice(0, CHANNELS_KEPT) },
      users: { complete, list: userList.slice(0, USERS_KEPT) }
    }
  }

  async channel (name: string): Promise<ChannelDetail> {
    const { gatecast } = this.#o
    const [presence, history] = await Promise.all([gatecast.presence(name), gatecast.history(name, { limit: HISTORY_KEPT })])
    let connections = 0
    for (const p of presence.users) connections += p.connections
    const people = presence.users.slice().sort((a, b) => b.connections - a.connections || (a.userId < b.userId ? -1 : 1))
    return {
      name,
      connections,
      users: presence.users.length,
      rate: this.#rates.get(name) ?? 0,
      presence: people.slice(0, PRESENCE_KEPT),
      history: history.messages.slice(-HISTORY_KEPT).map(historyLine)
    }
  }

  async user (userId: string): Promise<UserDetail> {
    const { gatecast, nodes } = this.#o
    const question: NodeQuestion = { kind: 'user', userId }
    const [status, answers] = await Promise.all([gatecast.userStatus(userId), nodes.ask(JSON.stringify(question), ASK_TIMEOUT_MS)])
    const sockets: SocketView[] = []
    for (const a of answers) {
      let found: ConnectionInfo[]
      try {
        found = JSON.parse(a.answer) as ConnectionInfo[]
      } catch {
        continue
      }
      if (!Array.isArray(found)) continue
      for (const c of found) sockets.push({ ...c, nodeId: a.nodeId })
    }
    sockets.sort((a, b) => a.openedAt - b.openedAt || (a.connectionId < b.connectionId ? -1 : 1))
    return { ...status, sockets: sockets.slice(0, SOCKETS_KEPT) }
  }

  /** the overview, and the channel and user the console looks at */
  async snapshot (focus: { channel?: string, user?: string } = {}): Promise<AdminSnapshot> {
    const [overview, channel, user] = await Promise.all([
      this.overview(),
      focus.channel === undefined ? null : this.channel(focus.channel),
      focus.user === undefined ? null : this.user(focus.user)
    ])
    // the rate as of this overview, which may have finished after the channel's reads
    if (channel !== null) channel.rate = this.#rates.get(channel.name) ?? 0
    return { overview, channel, user }
  }

  /** the cluster's last minutes, second by second: messages published and sockets open */
  async series (): Promise<SeriesPoint[]> {
    const question: NodeQuestion = { kind: 'series' }
    const answers = await this.#o.nodes.ask(JSON.stringify(question), ASK_TIMEOUT_MS)
    const perNode: SeriesPoint[][] = []
    for (const a of answers) {
      try {
        const points = JSON.parse(a.answer) as SeriesPoint[]
        if (Array.isArray(points)) perNode.push(points)
      } catch {}
    }
    return mergeSeries(perNode)
  }
}
