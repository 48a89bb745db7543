// What the nodes of one gateway tell each other for operators (the admin
// console): each node reports a small snapshot of itself about once a second,
// any node reads the latest report of every live node, and any node can put a
// question to every node and gather the answers. What a report or a question
// says is the core's business: to the engine they are opaque text, so both
// engines carry the same bytes and nothing here knows the console's shapes.

export interface NodeReport {
  nodeId: string
  /** ms since the epoch of the report, or of the node's last heartbeat when it has none */
  at: number
  /** the node's latest report; null for a live node that has not reported (yet, or at all) */
  report: string | null
}

export interface NodeAnswer {
  nodeId: string
  answer: string
}

/** Answers a question put to this node; a throw means no answer from it. */
export type NodeQuestionHandler = (question: string) => string

export interface NodeRegistry {
  /** this node's id (on Redis the prefix of its connection ids) */
  readonly nodeId: string
  /** replaces this node's report; read by every node until this node is gone */
  report (text: string): Promise<void>
  /** every live node, this one included, with its latest report */
  list (): Promise<NodeReport[]>
  /** this node answers questions from now on (null: no longer) */
  answer (handler: NodeQuestionHandler | null): Promise<void>
  /**
   * Puts a question to every node that answers questions, this one included;
   * resolves to what answered within `timeoutMs` (a slow or dying node is
   * left out rather than failing the whole question).
   */
  ask (question: string, timeoutMs: number): Promise<NodeAnswer[]>
}
