// Helpers for the client tests: the server-side sockets (read from the hub's
// internals: tests only) and a recorder of what a client emitted.
import type { FastifyInstance } from 'fastify'
import type { Connection } from '../../src/core/hub.ts'
import type { ClientErrorEvent, Events, GatecastClient, MessageFrame, StateEvent } from '../../client/index.ts'

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Polls until `cond` holds; throws with `what` after `ms`. */
export async function waitFor (cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * Every connection the hub adopts from now on (the hub keeps its registry
 * private, so its adopt() is wrapped). `open(userId)` lists those not closed.
 */
export function trackConnections (app: FastifyInstance): { all: Connection[], open: (userId: string) => Connection[] } {
  const hub = app.gatecast.hub
  const all: Connection[] = []
  const adopt = hub.adopt.bind(hub)
  hub.adopt = (conn: Connection) => {
    all.push(conn)
    adopt(conn)
  }
  return {
    all,
    open: (userId) => all.filter(c => c.userId === userId && !c.closing && c.ws.readyState === c.ws.OPEN)
  }
}

/** Cuts a user's sockets the hard way: no close frame, so the client sees 1006. */
export function terminate (conns: Connection[]): void {
  for (const c of conns) c.ws.terminate()
}

export interface Recorder {
  states: StateEvent[]
  messages: MessageFrame[]
  errors: ClientErrorEvent[]
  refreshed: Array<Events['refreshed']>
  /** resolves with the next state event matching `state` (already recorded ones after `from` count) */
  nextState: (state: StateEvent['state'], ms?: number) => Promise<StateEvent>
}

export function record (client: GatecastClient): Recorder {
  const r: Recorder = {
    states: [],
    messages: [],
    errors: [],
    refreshed: [],
    nextState: async (state, ms = 5000) => {
      const start = seen
      await waitFor(() => r.states.slice(start).some(s => s.state === state), ms, `state ${state}`)
      const found = r.states.slice(start).find(s => s.state === state) as StateEvent
      seen = r.states.indexOf(found) + 1
      return found
    }
  }
  let seen = 0
  client.on('state', e => r.states.push(e))
  client.on('message', m => r.messages.push(m))
  client.on('error', e => r.errors.push(e))
  client.on('refreshed', e => r.refreshed.push(e))
  return r
}
