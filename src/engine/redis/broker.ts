// The Redis broker: history in a stream per channel, fan-out by pub/sub, one
// topic per channel plus the control topic.
import { storedMessageOf } from '../../protocol/frames.ts'
import type { Broker, BrokerListener } from '../broker.ts'
import { newEpoch, parseId } from '../ids.ts'
import type { ControlMessage, HistoryOptions, PublishInput, Recovery, StoredMessage } from '../types.ts'
import type { RedisConnection } from './connection.ts'

export class RedisBroker implements Broker {
  readonly #c: RedisConnection
  // compared with the topic of every pub/sub message
  readonly #controlTopic: string
  readonly #topics = new Map<string, string>()
  #listener: BrokerListener | null = null

  constructor (c: RedisConnection) {
    this.#c = c
    this.#controlTopic = c.keys.control()
    c.sub.on('message', (topic: string, payload: string) => this.#onMessage(topic, payload))
  }

  /** null: deliveries are dropped (not started, or closed) */
  attach (listener: BrokerListener | null): void {
    this.#listener = listener
  }

  /** control messages reach this node from now on (queued until the subscriber is ready) */
  listenControl (): void {
    this.#c.sub.subscribe(this.#controlTopic).catch(this.#c.onError)
  }

  #onMessage (topic: string, payload: string): void {
    const listener = this.#listener
    if (listener === null) return
    if (topic === this.#controlTopic) {
      listener.control(JSON.parse(payload) as ControlMessage)
      return
    }
    const channel = this.#topics.get(topic)
    if (channel === undefined) return
    // "<seq> <ts> <frame>"
    const a = payload.indexOf(' ')
    const b = payload.indexOf(' ', a + 1)
    listener.deliver(channel, Number(payload.slice(0, a)), payload.slice(b + 1), Number(payload.slice(a + 1, b)))
  }

  async subscribe (channel: string): Promise<void> {
    const topic = this.#c.keys.topic(channel)
    this.#topics.set(topic, channel)
    await this.#c.sub.subscribe(topic)
  }

  async unsubscribe (channel: string): Promise<void> {
    const topic = this.#c.keys.topic(channel)
    this.#topics.delete(topic)
    await this.#c.sub.unsubscribe(topic)
  }

  async publish (channel: string, input: PublishInput, opts: HistoryOptions): Promise<string> {
    const k = this.#c.keys
    return await this.#c.scripts.publish(
      k.meta(channel), k.hist(channel),
      channel, input.from === null ? 'null' : JSON.stringify(input.from), input.dataJson, input.ts,
      opts.historySize, newEpoch(), opts.historyTtl * 1000, k.topic(channel)
    ) as string
  }

  async publishTransient (channel: string, frame: string): Promise<void> {
    await this.#c.client.publish(this.#c.keys.topic(channel), `0 0 ${frame}`)
  }

  async recover (channel: string, since: string): Promise<Recovery> {
    const pos = parseId(since)
    if (pos === null) return { recovered: false, top: 0, frames: [] }
    const k = this.#c.keys
    const out = await this.#c.scripts.recover(k.meta(channel), k.hist(channel), pos.epoch, pos.seq, Date.now()) as Array<number | string>
    return { recovered: out[0] === 1, top: Number(out[1]), frames: out.slice(2) as string[] }
  }

  async history (channel: string, opts: { since?: string, limit: number }): Promise<{ messages: StoredMessage[], recovered: boolean }> {
    let frames: string[]
    let recovered = true
    if (opts.since !== undefined) {
      const r = await this.recover(channel, opts.since)
      recovered = r.recovered
      frames = r.frames.slice(0, opts.limit)
    } else {
      const now = Date.now()
      const rows = await this.#c.client.xrevrange(this.#c.keys.hist(channel), '+', '-', 'COUNT', opts.limit)
      frames = rows.reverse().filter(([, f]) => Number(f[1]) > now).map(([, f]) => f[3])
    }
    return {
      recovered,
      messages: frames.map(storedMessageOf)
    }
  }

  async control (msg: ControlMessage): Promise<void> {
    await this.#c.client.publish(this.#controlTopic, JSON.stringify(msg))
  }
}
