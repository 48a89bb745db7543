// The in-process broker: one node, streams in a map. Delivery is synchronous
// inside publish, so recovery needs no buffering here.
import { randomUUID } from 'node:crypto'
import { messageFrameText, storedMessageOf } from '../../protocol/frames.ts'
import type { Broker, BrokerListener } from '../broker.ts'
import { formatId, newEpoch, parseId } from '../ids.ts'
import type { ConnectionCall, ConnectionInfo, ControlMessage, HistoryOptions, PublishInput, Recovery, StoredMessage } from '../types.ts'

// only the frame: history reads (rare) parse it back, as the Redis engine does,
// and each entry outlives a young-generation GC or two, which copies it
interface Entry {
  seq: number
  expiresAt: number
  frame: string
  bytes: number
}

interface Stream {
  epoch: string
  top: number
  entries: Entry[]
  lastPublish: number
  /** of the entries kept */
  bytes: number
}

// once over HISTORY_MAX_BYTES, history is cut to this share of it, so the
// eviction's scan over the channels runs once per many publishes, not on each
const EVICT_TO = 0.9

const IDLE_STREAM_MS = 300_000

export class MemoryBroker implements Broker {
  #listener: BrokerListener | null = null
  readonly #streams = new Map<string, Stream>()
  readonly #maxBytes: number
  // history kept in all, every channel
  #bytes = 0

  /** maxBytes: HISTORY_MAX_BYTES, what the history of every channel may hold in all */
  constructor (maxBytes = Infinity) {
    this.#maxBytes = maxBytes
  }

  /** bytes of history kept, every channel */
  get historyBytes (): number {
    return this.#bytes
  }

  /** null: deliveries are dropped (not started, or closed) */
  attach (listener: BrokerListener | null): void {
    this.#listener = listener
  }

  async subscribe (): Promise<void> {}
  async unsubscribe (): Promise<void> {}

  #stream (channel: string): Stream {
    let s = this.#streams.get(channel)
    if (s === undefined) {
      s = { epoch: newEpoch(), top: 0, entries: [], lastPublish: 0, bytes: 0 }
      this.#streams.set(channel, s)
    }
    return s
  }

  #trim (s: Stream, now: number): void {
    let drop = 0
    let bytes = 0
    while (drop < s.entries.length && s.entries[drop].expiresAt <= now) bytes += s.entries[drop++].bytes
    if (drop > 0) {
      s.entries.splice(0, drop)
      this.#dropped(s, bytes)
    }
  }

  #dropped (s: Stream, bytes: number): void {
    s.bytes -= bytes
    this.#bytes -= bytes
  }

  /** The oldest entries of the largest channels go first, until history is back under EVICT_TO of the bound. */
  #evict (): void {
    const target = this.#maxBytes * EVICT_TO
    const streams = [...this.#streams.values()].filter(s => s.bytes > 0).sort((a, b) => b.bytes - a.bytes)
    // level: down to the size of the next largest, then both, then three… (the largest first)
    for (let i = 0; i < streams.length && this.#bytes > target; i++) {
      const level = streams[i + 1]?.bytes ?? 0
      for (let j = 0; j <= i && this.#bytes > target; j++) {
        const s = streams[j]
        let drop = 0
        let bytes = 0
        while (drop < s.entries.length && s.bytes - bytes > level && this.#bytes - bytes > target) bytes += s.entries[drop++].bytes
        if (drop > 0) {
          s.entries.splice(0, drop)
          this.#dropped(s, bytes)
        }
      }
    }
  }

  async publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    const s = this.#stream(channel)
    const seq = ++s.top
    const id = formatId(s.epoch, seq)
    const frame = messageFrameText(channel, id, input.from, input.dataJson, input.ts)
    s.lastPublish = input.ts
    if (opts.historySize > 0) {
      const bytes = Buffer.byteLength(frame)
      s.entries.push({ seq, expiresAt: input.ts + opts.historyTtl * 1000, frame, bytes })
      s.bytes += bytes
      this.#bytes += bytes
      // shift() is O(1) in V8 (left-trimming); splice would move the whole array
      while (s.entries.length > opts.historySize) this.#dropped(s, (s.entries.shift() as Entry).bytes)
      if (this.#bytes > this.#maxBytes) this.#evict()
    } else if (s.entries.length > 0) {
      s.entries.length = 0
      this.#dropped(s, s.bytes)
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

  connectionId (): string {
    return randomUUID()
  }

  async connection (connectionId: string, call: ConnectionCall): Promise<ConnectionInfo | true | null> {
    return this.#listener?.connection(connectionId, call) ?? null
  }

  /**
   * Drops expired entries, and streams idle for a while with nothing left,
   * unless someone is on the channel: their `since` must keep meaning the
   * same epoch while they are connected.
   */
  sweep (now: number, occupied: (channel: string) => boolean): void {
    for (const [channel, s] of this.#streams) {
      this.#trim(s, now)
      if (s.entries.length === 0 && now - s.lastPublish > IDLE_STREAM_MS && !occupied(channel)) this.#streams.delete(channel)
    }
  }
}
