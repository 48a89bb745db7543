// Messages per channel on this node, for the admin console's rates: bumped
// once per message where the node receives a channel's message for its own
// subscribers (Hub.deliver), never per socket, and taken (read and reset)
// about once a second. A node with no subscriber on a channel never counts it,
// and every node with one sees every message of it: across the cluster the
// rate of a channel is the largest of the nodes' counts, not their sum.
export class ChannelCounter {
  #counts = new Map<string, number>()

  bump (channel: string): void {
    this.#counts.set(channel, (this.#counts.get(channel) ?? 0) + 1)
  }

  /** the counts since the last take; counting starts again from nothing */
  take (): Map<string, number> {
    const counts = this.#counts
    // a fresh map rather than clear(): the map stays as small as one second's channels
    this.#counts = new Map()
    return counts
  }
}
