// One channel of one socket. The hub keeps subscriptions, not sockets, per
// channel, so a delivery reaches its subscription without a lookup, and each
// channel keeps its own order and recovery on a shared socket.
import { frameText } from '../protocol/wire.ts'
import type { ChannelOptions } from './channels.ts'

/** What a subscription needs of its socket. */
export interface SubscriptionOwner {
  readonly id: string
  readonly userId: string
  readonly closing: boolean
  /** a frame for the socket, in order with everything else it is sent */
  deliver (framed: Buffer): void
}

const FLOOR_MS = 10_000

export type SubscribedBy = 'client' | 'server'

export class Subscription {
  readonly owner: SubscriptionOwner
  readonly channel: string
  readonly opts: ChannelOptions
  readonly by: SubscribedBy
  /** in presence: its removal is owed when it ends */
  present = false
  /**
   * Until it is live, frames of the channel wait here as [seq, frame, …], so the
   * replay and live frames meet without a gap or a duplicate. seq 0: not from
   * history (presence).
   */
  #pending: Array<number | Buffer> | null = []
  // after a recovery: live frames up to this sequence were in it or before it.
  // Pub/sub may hand over such a frame after the history read answered, but only
  // just after: the first newer frame ends the filter, and so does time (a
  // channel whose stream restarts counts from 1 again).
  #floor = 0
  #floorUntil = 0

  constructor (owner: SubscriptionOwner, channel: string, opts: ChannelOptions, by: SubscribedBy) {
    this.owner = owner
    this.channel = channel
    this.opts = opts
    this.by = by
  }

  get live (): boolean {
    return this.#pending === null
  }

  /** A frame of a fan-out (the same bytes for every subscription); `seq` is its history sequence, 0 when not from history. */
  offer (seq: number, framed: Buffer): void {
    if (this.#pending !== null) {
      this.#pending.push(seq, framed)
      return
    }
    if (this.#floor !== 0 && seq !== 0) {
      if (seq <= this.#floor && performance.now() < this.#floorUntil) return
      this.#floor = 0
    }
    this.owner.deliver(framed)
  }

  /**
   * Goes live: the replay, then what waited, less what the history read already
   * covered (sequence up to `top`; 0 when there was no read).
   */
  open (replay: readonly string[], top: number): void {
    const pending = this.#pending
    this.#pending = null
    for (const frame of replay) this.owner.deliver(frameText(frame))
    if (pending !== null) {
      for (let i = 0; i < pending.length; i += 2) {
        const seq = pending[i] as number
        if (seq === 0 || seq > top) this.owner.deliver(pending[i + 1] as Buffer)
      }
    }
    if (top > 0) {
      this.#floor = top
      this.#floorUntil = performance.now() + FLOOR_MS
    }
  }
}
