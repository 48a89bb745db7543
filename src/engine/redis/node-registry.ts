// The node registry on Redis: reports in one hash (a field per node, the time
// of the report before the text), dropped with the node by the heartbeat's
// reaping (nodes.ts); questions on one topic every answering node listens to,
// answers on the asker's own topic. A node counts as live while it beats.
import { randomUUID } from 'node:crypto'
import { GatecastError } from '../../protocol/errors.ts'
import type { NodeAnswer, NodeQuestionHandler, NodeRegistry, NodeReport } from '../nodes.ts'
import type { RedisConnection } from './connection.ts'

interface Question { id: string, from: string, q: string }
interface Reply { id: string, nodeId: string, answer: string }
interface Pending { answers: NodeAnswer[], expected: number, done: () => void }

export class RedisNodeRegistry implements NodeRegistry {
  readonly #c: RedisConnection
  readonly #timeoutMs: number
  // compared with the topic of every pub/sub message this node gets
  readonly #askTopic: string
  readonly #answerTopic: string
  #handler: NodeQuestionHandler | null = null
  #answering: Promise<void> | null = null
  #asking: Promise<void> | null = null
  readonly #pending = new Map<string, Pending>()

  constructor (c: RedisConnection, nodeTimeoutMs: number) {
    this.#c = c
    this.#timeoutMs = nodeTimeoutMs
    this.#askTopic = c.keys.nodesAsk()
    this.#answerTopic = c.keys.nodeAnswers(c.nodeId)
    // classic pub/sub on one Redis, sharded on a cluster: the connection knows which
    c.onMessage((topic, payload) => {
      if (topic === this.#askTopic) this.#onQuestion(payload)
      else if (topic === this.#answerTopic) this.#onReply(payload)
    })
  }

  get nodeId (): string {
    return this.#c.nodeId
  }

  async report (text: string): Promise<void> {
    // while Redis is away there is nobody to read it; the next one goes out when it is back
    if (!this.#c.isReady()) return
    await this.#c.client.hset(this.#c.keys.nodeReports(), this.#c.nodeId, `${Date.now()} ${text}`)
  }

  async list (): Promise<NodeReport[]> {
    const { client, keys: k } = this.#c
    const [beats, reports] = await Promise.all([client.hgetall(k.nodes()), client.hgetall(k.nodeReports())])
    const now = Date.now()
    const out: NodeReport[] = []
    for (const [nodeId, beat] of Object.entries(beats)) {
      // silent past the timeout: dead, and about to be reaped
      if (now - Number(beat) >= this.#timeoutMs) continue
      const raw = reports[nodeId]
      const sp = raw === undefined ? -1 : raw.indexOf(' ')
      const at = sp === -1 ? 0 : Number(raw.slice(0, sp))
      // a report as old as a dead node's beat says nothing about the node now
      if (sp !== -1 && now - at < this.#timeoutMs) out.push({ nodeId, at, report: raw.slice(sp + 1) })
      else out.push({ nodeId, at: Number(beat), report: null })
    }
    return out.sort((a, b) => a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)
  }

  async answer (handler: NodeQuestionHandler | null): Promise<void> {
    this.#handler = handler
    if (handler !== null) {
      this.#answering ??= this.#c.subscribe(this.#askTopic)
      await this.#answering
    } else if (this.#answering !== null) {
      this.#answering = null
      // an asker counts the listeners of the topic: one that would not answer must not be one
      await this.#c.unsubscribe(this.#askTopic)
    }
  }

  async ask (question: string, timeoutMs: number): Promise<NodeAnswer[]> {
    // the subscriber would queue the subscription until Redis is back, and the asker with it
    if (!this.#c.isReady()) throw GatecastError.unavailable('engine unavailable')
    this.#asking ??= this.#c.subscribe(this.#answerTopic).catch((err: Error) => {
      this.#asking = null
      throw err
    })
    await this.#asking
    const id = randomUUID()
    let timer: NodeJS.Timeout | undefined
    const pending: Pending = { answers: [], expected: Infinity, done: () => {} }
    const gathered = new Promise<void>(resolve => {
      pending.done = resolve
      timer = setTimeout(resolve, timeoutMs)
    })
    this.#pending.set(id, pending)
    try {
      const msg: Question = { id, from: this.#c.nodeId, q: question }
      // PUBLISH (SPUBLISH) says how many nodes got it: as many answers as that, at most
      pending.expected = await this.#c.publish(this.#askTopic, JSON.stringify(msg))
      if (pending.answers.length >= pending.expected) pending.done()
      await gathered
      return pending.answers
    } finally {
      clearTimeout(timer)
      this.#pending.delete(id)
    }
  }

  #onQuestion (payload: string): void {
    const handler = this.#handler
    if (handler === null) return
    let msg: Question
    let answer: string
    try {
      msg = JSON.parse(payload) as Question
      answer = handler(msg.q)
    } catch (err) {
      this.#c.log.debug({ err }, 'node question not answered')
      return
    }
    const reply: Reply = { id: msg.id, nodeId: this.#c.nodeId, answer }
    this.#c.publish(this.#c.keys.nodeAnswers(msg.from), JSON.stringify(reply)).catch(this.#c.onError)
  }

  #onReply (payload: string): void {
    const msg = JSON.parse(payload) as Reply
    const pending = this.#pending.get(msg.id)
    if (pending === undefined) return
    pending.answers.push({ nodeId: msg.nodeId, answer: msg.answer })
    if (pending.answers.length >= pending.expected) pending.done()
  }
}
