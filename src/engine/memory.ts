// The in-process engine: one node, everything in maps. Delivery is synchronous
// inside publish, so recovery needs no buffering here.
import { messageFrameText, storedMessageOf } from '../protocol/frames.ts'
import { formatId, newEpoch, parseId } from './ids.ts'
import type {
  ChannelSummary, ConnectionRef, ControlMessage, EngineListener, HistoryOptions, PresenceEntry,
  PublishInput, Recovery, RefreshRecord, StoredMessage, UserStatus
} from './types.ts'

// only the frame: history reads (rare) parse it back, as the Redis engine does,
// and each entry outlives a young-generation GC or two, which copies it
interface Entry {
  seq: number
  expiresAt: number
  frame: string
}

interface Stream {
  epoch: string
  top: number
  entries: Entry[]
  lastPublish: number
}

const IDLE_STREAM_MS = 300_000
const SWEEP_MS = 10_000

export class MemoryEngine {
  #listener: EngineListener | null = null
  readonly #streams = new Map<string, Stream>()
  // channel → user → connection count, and user → channel → count
  readonly #byChannel = new Map<string, Map<string, number>>()
  readonly #byUser = new Map<string, Map<string, number>>()
  readonly #expiring = new Map<string, number>()
  readonly #refresh = new Map<string, { record: RefreshRecord, used: boolean, expiresAt: number }>()
  readonly #hits = new Map<string, { count: number, resetAt: number }>()
  #sweeper: NodeJS.Timeout | null = null

  async start (listener: EngineListener): Promise<void> {
    this.#listener = listener
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), SWEEP_MS).unref()
  }

  async close (): Promise<void> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    this.#listener = null
  }

  isReady (): boolean {
    return this.#listener !== null
  }

  health (): { errors: number, rttMs: number | null } {
    return { errors: 0, rttMs: null }
  }

  async subscribe (): Promise<void> {}
  async unsubscribe (): Promise<void> {}

  #stream (channel: string): Stream {
    let s = this.#streams.get(channel)
    if (s === undefined) {
      s = { epoch: newEpoch(), top: 0, entries: [], lastPublish: 0 }
      this.#streams.set(channel, s)
    }
    return s
  }

  #trim (s: Stream, now: number): void {
    let drop = 0
    while (drop < s.entries.length && s.entries[drop].expiresAt <= now) drop++
    if (drop > 0) s.entries.splice(0, drop)
  }

  async publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    const s = this.#stream(channel)
    const seq = ++s.top
    const id = formatId(s.epoch, seq)
    const frame = messageFrameText(channel, id, input.from, input.dataJson, input.ts)
    s.lastPublish = input.ts
    if (opts.historySize > 0) {
      s.entries.push({ seq, expiresAt: input.ts + opts.historyTtl * 1000, frame })
      // shift() is O(1) in V8 (left-trimming); splice would move the whole array
      while (s.entries.length > opts.historySize) s.entries.shift()
    } else if (s.entries.length > 0) {
      s.entries.length = 0
    }
    this.#listener?.deliver(channel, seq, frame, input.ts)
    return id
  }

  async publishTransient (channel: string, frame: string): Promise<void> {
    this.#listener?.deliver(channel, 0, frame, 0)
  }

  /** Entries after `since`, or null when history does not reach back that far. */
  #after (channel: string, since: string, now: number): Entry[] | null {
    const s = this.#streams.get(channel)
    const pos = parseId(since)
    if (s === undefined || pos === null || pos.epoch !== s.epoch || pos.seq > s.top) return null
    this.#trim(s, now)
    if (pos.seq === s.top) return []
    const first = s.entries[0]
    if (first === undefined || first.seq > pos.seq + 1) return null
    return s.entries.slice(pos.seq + 1 - first.seq)
  }

  async recover (channel: string, since: string): Promise<Recovery> {
    const found = this.#after(channel, since, Date.now())
    const top = this.#streams.get(channel)?.top ?? 0
    if (found === null) return { recovered: false, frames: [], top }
    return { recovered: true, frames: found.map(e => e.frame), top }
  }

  async history (channel: string, opts: { since?: string, limit: number }): Promise<{ messages: StoredMessage[], recovered: boolean }> {
    const now = Date.now()
    let entries: Entry[]
    let recovered = true
    if (opts.since !== undefined) {
      const found = this.#after(channel, opts.since, now)
      recovered = found !== null
      entries = found ?? []
    } else {
      const s = this.#streams.get(channel)
      if (s !== undefined) this.#trim(s, now)
      entries = s?.entries ?? []
    }
    // with since: the next `limit` after it (paging forward); without: the newest `limit`
    const picked = entries.length <= opts.limit ? entries : opts.since !== undefined ? entries.slice(0, opts.limit) : entries.slice(entries.length - opts.limit)
    return {
      recovered,
      messages: picked.map(e => storedMessageOf(e.frame))
    }
  }

  async control (msg: ControlMessage): Promise<void> {
    this.#listener?.control(msg)
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

  #expire (key: string, ttlSeconds: number): void {
    this.#expiring.set(key, Date.now() + ttlSeconds * 1000)
  }

  #alive (key: string): boolean {
    const at = this.#expiring.get(key)
    return at !== undefined && at > Date.now()
  }

  async revokeToken (jti: string, ttlSeconds: number): Promise<void> {
    this.#expire(`jti:${jti}`, ttlSeconds)
  }

  async isTokenRevoked (jti: string): Promise<boolean> {
    return this.#alive(`jti:${jti}`)
  }

  async saveRefreshToken (key: string, record: RefreshRecord, ttlSeconds: number): Promise<void> {
    this.#refresh.set(key, { record, used: false, expiresAt: Date.now() + ttlSeconds * 1000 })
  }

  async peekRefreshToken (key: string): Promise<RefreshRecord | null> {
    const r = this.#refresh.get(key)
    return r === undefined || r.expiresAt <= Date.now() ? null : r.record
  }

  async useRefreshToken (key: string): Promise<{ record: RefreshRecord, reused: boolean } | null> {
    const r = this.#refresh.get(key)
    if (r === undefined || r.expiresAt <= Date.now()) return null
    const reused = r.used
    r.used = true
    return { record: r.record, reused }
  }

  async revokeFamily (family: string, ttlSeconds: number): Promise<void> {
    this.#expire(`family:${family}`, ttlSeconds)
  }

  async isFamilyRevoked (family: string): Promise<boolean> {
    return this.#alive(`family:${family}`)
  }

  async hit (key: string, windowSeconds: number): Promise<number> {
    const now = Date.now()
    let h = this.#hits.get(key)
    if (h === undefined || h.resetAt <= now) {
      h = { count: 0, resetAt: now + windowSeconds * 1000 }
      this.#hits.set(key, h)
    }
    return ++h.count
  }

  async hits (key: string): Promise<number> {
    const h = this.#hits.get(key)
    return h === undefined || h.resetAt <= Date.now() ? 0 : h.count
  }

  async clearHits (key: string): Promise<void> {
    this.#hits.delete(key)
  }

  #sweep (now: number): void {
    for (const [channel, s] of this.#streams) {
      this.#trim(s, now)
      if (s.entries.length === 0 && now - s.lastPublish > IDLE_STREAM_MS && !this.#byChannel.has(channel)) this.#streams.delete(channel)
    }
    for (const [k, at] of this.#expiring) if (at <= now) this.#expiring.delete(k)
    for (const [k, r] of this.#refresh) if (r.expiresAt <= now) this.#refresh.delete(k)
    for (const [k, h] of this.#hits) if (h.resetAt <= now) this.#hits.delete(k)
  }
}
