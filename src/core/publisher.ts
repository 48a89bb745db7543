// One way into a channel for the server API and for clients alike: depth
// check, publish hooks, serialisation once, then the broker.
import { randomUUID } from 'node:crypto'
import type { Broker } from '../engine/broker.ts'
import { GatecastError } from '../protocol/errors.ts'
import { directFrameText, MAX_DATA_DEPTH, withinDepth } from '../protocol/frames.ts'
import type { ChannelOptions } from './channels.ts'
import { SKIPPED, type Hooks } from './hooks.ts'

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
   * With hooks, `after` (the same socket's publish before this one) is waited
   * for before this one goes to the broker: verdicts may come back in any
   * order, the channel gets the socket's messages in the order it sent them.
   */
  publish (channel: string, data: unknown, userId: null, connectionId: null, opts: ChannelOptions): Promise<string>
  publish (channel: string, data: unknown, userId: string, connectionId: string, opts: ChannelOptions, after?: Promise<unknown> | null): Promise<string | null>
  publish (channel: string, data: unknown, userId: string | null, connectionId: string | null, opts: ChannelOptions, after: Promise<unknown> | null = null): Promise<string | null> {
    checkDepth(data)
    if (!this.#hooks.judgesPublish(connectionId !== null)) return this.#store(channel, data, userId, opts)
    const judged = this.#hooks.runPublish({ channel, data, userId, connectionId })
    const inTurn = after === null ? judged : Promise.all([judged, after]).then(([hooked]) => hooked)
    return inTurn.then(hooked => {
      if (hooked === SKIPPED) return null
      // what a hook or the backend put in goes out to every socket: the same bound as a client's
      checkDepth(hooked)
      return this.#store(channel, hooked, userId, opts)
    })
  }

  /** whether a client's publish waits for hooks or the backend (and so may be overtaken without `after`) */
  get judgesClientPublish (): boolean {
    return this.#hooks.judgesPublish(true)
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
