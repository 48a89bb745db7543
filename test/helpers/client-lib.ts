// Helpers for the client tests: the server-side sockets (read from the hub's
// internals: tests only), recorders of what a client and its subscriptions
// emitted, and a WebSocket that keeps what the client sent.
import type { FastifyInstance } from 'fastify'
import type { Session } from '../../src/core/session.ts'
import { WebSocket } from 'ws'
import type { WsTransport } from '../../src/transport/ws.ts'
import type {
  ClientErrorEvent, ClientFrame, ErrorFrame, Events, GatecastClient, MessageFrame, PresenceFrame, StateEvent,
  SubscribedEvent, Subscription, UnsubscribedEvent, WebSocketConstructor
} from '../../client/index.ts'
import { waitFor } from './wait.ts'

/**
 * Every connection the hub adopts from now on (the hub keeps its registry
 * private, so its adopt() is wrapped). `open(userId)` lists those not closed.
 */
export function trackConnections (app: FastifyInstance): { all: Session[], open: (userId: string) => Session[] } {
  const hub = app.gatecast.hub
  const all: Session[] = []
  const adopt = hub.adopt.bind(hub)
  hub.adopt = (conn: Session) => {
    all.push(conn)
    adopt(conn)
  }
  return {
    all,
    open: (userId) => all.filter(c => c.userId === userId && !c.closing && wsOf(c).readyState === wsOf(c).OPEN)
  }
}

/** The ws socket behind a session (the route's transport is a WsTransport). */
export function wsOf (session: Session): WebSocket {
  return (session.transport as WsTransport).ws
}

/** Cuts a user's sockets the hard way: no close frame, so the client sees 1006. */
export function terminate (conns: Session[]): void {
  for (const c of conns) c.transport.terminate()
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
      await waitFor(() => r.states.slice(start).some(s => s.state === state), { ms, what: `state ${state}` })
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

export interface SubRecorder {
  messages: MessageFrame[]
  presence: PresenceFrame[]
  subscribed: SubscribedEvent[]
  unsubscribed: UnsubscribedEvent[]
  errors: ErrorFrame[]
}

/** Everything a subscription emitted, from now on. */
export function recordSub (sub: Subscription): SubRecorder {
  const r: SubRecorder = { messages: [], presence: [], subscribed: [], unsubscribed: [], errors: [] }
  sub.on('message', m => r.messages.push(m))
  sub.on('presence', p => r.presence.push(p))
  sub.on('subscribed', e => r.subscribed.push(e))
  sub.on('unsubscribed', e => r.unsubscribed.push(e))
  sub.on('error', e => r.errors.push(e))
  return r
}

/**
 * The `ws` WebSocket, keeping every frame the client sends (parsed) and every URL
 * it opens, so a test can see what a (re)subscribe or a reconnect asked for.
 */
export function spyingWebSocket (): { WebSocket: WebSocketConstructor, sent: ClientFrame[], urls: string[] } {
  const sent: ClientFrame[] = []
  const urls: string[] = []
  class Spying extends WebSocket {
    constructor (...args: ConstructorParameters<typeof WebSocket>) {
      super(...args)
      urls.push(String(args[0]))
      const send = this.send.bind(this)
      this.send = ((data: string) => {
        sent.push(JSON.parse(data) as ClientFrame)
        send(data)
      }) as typeof this.send
    }
  }
  return { WebSocket: Spying, sent, urls }
}
