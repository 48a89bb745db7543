// One process is the whole gateway: the registry is this node alone.
import { randomBytes } from 'node:crypto'
import type { NodeAnswer, NodeQuestionHandler, NodeRegistry, NodeReport } from '../nodes.ts'

export class MemoryNodeRegistry implements NodeRegistry {
  // the same shape as a Redis node's id, so the console shows either alike
  readonly nodeId = randomBytes(9).toString('base64url')
  readonly #startedAt = Date.now()
  #last: { at: number, text: string } | null = null
  #handler: NodeQuestionHandler | null = null

  async report (text: string): Promise<void> {
    this.#last = { at: Date.now(), text }
  }

  async list (): Promise<NodeReport[]> {
    return [{ nodeId: this.nodeId, at: this.#last?.at ?? this.#startedAt, report: this.#last?.text ?? null }]
  }

  async answer (handler: NodeQuestionHandler | null): Promise<void> {
    this.#handler = handler
  }

  async ask (question: string): Promise<NodeAnswer[]> {
    if (this.#handler === null) return []
    try {
      return [{ nodeId: this.nodeId, answer: this.#handler(question) }]
    } catch {
      // as on Redis: a node whose handler fails does not answer
      return []
    }
  }
}
