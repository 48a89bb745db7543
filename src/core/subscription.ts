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

export type SubscribedBy = 'client' | 'server'

// after a recovery, live frames up to `seq` were in it or before it. Pub/sub may
// hand over such a frame after the history read answered, but only just after:
// the first newer frame ends the filter, and so does time (a channel whose
// stream restarts counts from 1 again).
interface Floor { seq: number, until: number }
const FLOOR_MS = 10_000

const BY_SERVER = 1
const PRESENT = 2
const LIVE = 4

export class Subscription {
  readonly owner: SubscriptionOwner
  readonly channel: string
  readonly opts: ChannelOptions
  // A socket holds up to WS_CHANNELS_PER_SOCKET of these, so every field counts:
  // the flags share one small integer, and one field holds what is needed only
  // for a moment (the frames waiting before it is live, then the replay's floor).
  #state: number
  /**
   * Until it is live, frames of the channel wait here as [seq, frame, …], so the
   * replay and live frames meet without a gap or a duplicate (seq 0: not from
   * history, e.g. presence); allocated by the first such frame. Once live, the floor.
   */
  #aside: Array<number | Buffer> | Floor | null = null

  constructor (owner: SubscriptionOwner, channel: string, opts: ChannelOptions, by: SubscribedBy) {
    this.owner = owner
    this.channel = channel
    this.opts = opts
    this.#state = by === 'server' ? BY_SERVER : 0
  }

  get by (): SubscribedBy {
    return (this.#state & BY_SERVER) !== 0 ? 'server' : 'client'
  }

  /** the server subscribed it (again): the token no longer judges it */
  markServer (): void {
    this.#state |= BY_SERVER
  }

  /** in presence: its removal is owed when it ends */
  get present (): boolean {
    return (this.#state & PRESENT) !== 0
  }

  set present (on: boolean) {
    this.#state = on ? this.#state | PRESENT : this.#state & ~PRESENT
  }

  get live (): boolean {
    return (this.#state & LIVE) !== 0
  }

  /** A frame of a fan-out (the same bytes for every subscription); `seq` is its history sequence, 0 when not from history. */
  offer (seq: number, framed: Buffer): void {
    const aside = this.#aside
    if ((this.#state & LIVE) === 0) {
      if (aside === null) this.#aside = [seq, framed]
      else (aside as Array<number | Buffer>).push(seq, framed)
      return
    }
    if (aside !== null && seq !== 0) {
      const floor = aside as Floor
      if (seq <= floor.seq && performance.now() < floor.until) return
      this.#aside = null
    }
    this.owner.deliver(framed)
  }

  /**
   * Goes live: the replay, then what waited, less what the history read already
   * covered (sequence up to `top`; 0 when there was no read).
   */
  open (replay: readonly string[], top: number): void {
    const pending = (this.#state & LIVE) === 0 ? this.#aside as Array<number | Buffer> | null : null
    this.#state |= LIVE
    this.#aside = top > 0 ? { seq: top, until: performance.now() + FLOOR_MS } : null
    for (const frame of replay) this.owner.deliver(frameText(frame))
    if (pending !== null) {
      for (let i = 0; i < pending.length; i += 2) {
        const seq = pending[i] as number
        if (seq === 0 || seq > top) this.owner.deliver(pending[i + 1] as Buffer)
      }
    }
  }
}
