// One way into a channel for the server API and for clients alike: depth
// check, publish hooks, serialisation once, then the broker.
import { randomUUID } from 'node:crypto'
import type { Broker } from '../engine/broker.ts'
import { GatecastError } from '../protocol/errors.ts'
import { directFrameText, MAX_DATA_DEPTH, withinDepth } from '../protocol/frames.ts'
import type { ChannelOptions } from './channels.ts'
import { SKIPPED, type Hooks } from './hooks.ts'

/** Where a socket keeps its last publish still waiting for a verdict (null: none). */
export interface PublishOrder {
  judging: Promise<unknown> | null
}

const noop = (): void => {}

/**
 * The socket's next publish waits for this one, whatever its outcome, and for
 * every one before it (a refusal settles early, ahead of them).
 */
function queueAfter (order: PublishOrder, published: Promise<unknown>, before: Promise<unknown> | null): void {
  const own = published.then(noop, noop)
  const settled = before === null ? own : Promise.all([before, own])
  order.judging = settled
  settled.then(() => { if (order.judging === settled) order.judging = null }, noop)
}

function checkDepth (data: unknown): void {
  if (!withinDepth(data)) throw GatecastError.badRequest(`data nests deeper than ${MAX_DATA_DEPTH} levels`)
}

export class Publisher {
  readonly #broker: Broker
  readonly #hooks: Hooks

  constructor (broker: Broker, hooks: Hooks) {
    this.#broker = broker
    this.#hooks = hooks
  }

  /**
   * Hands a message to the broker; resolves to its id, or null when the
   * backend dropped a client's publish. Not async: without publish hooks
   * everything up to the broker (and, in memory, the fan-out) runs in the
   * caller's turn with no promise of its own. Bad data throws synchronously.
   * With hooks, a client's publish waits for that socket's publish before it
   * (`order`) before it goes to the broker: verdicts may come back in any
   * order, the channel gets the socket's messages in the order it sent them.
   */
  publish (channel: string, data: unknown, userId: null, connectionId: null, opts: ChannelOptions): Promise<string>
  publish (channel: string, data: unknown, userId: string, connectionId: string, opts: ChannelOptions, order: PublishOrder): Promise<string | null>
  publish (channel: string, data: unknown, userId: string | null, connectionId: string | null, opts: ChannelOptions, order?: PublishOrder): Promise<string | null> {
    checkDepth(data)
    if (!this.#hooks.judgesPublish(connectionId !== null)) return this.#store(channel, data, userId, opts)
    const judged = this.#hooks.runPublish({ channel, data, userId, connectionId })
    const before = order?.judging ?? null
    const inTurn = before === null ? judged : Promise.all([judged, before]).then(([hooked]) => hooked)
    const stored = inTurn.then(hooked => {
      if (hooked === SKIPPED) return null
      // what a hook or the backend put in goes out to every socket: the same bound as a client's
      checkDepth(hooked)
      return this.#store(channel, hooked, userId, opts)
    })
    if (order !== undefined) queueAfter(order, stored, before)
    return stored
  }

  #store (channel: string, data: unknown, userId: string | null, opts: ChannelOptions): Promise<string> {
    const dataJson = JSON.stringify(data)
    if (dataJson === undefined) throw GatecastError.badRequest('data must be a JSON value')
    return this.#broker.publish(channel, { from: userId, dataJson, ts: Date.now() }, opts)
  }

  /** A `direct` frame from the server, for users, single sockets or everyone. */
  directFrame (data: unknown): string {
    checkDepth(data)
    return directFrameText(randomUUID(), null, JSON.stringify(data ?? null), Date.now())
  }
}
