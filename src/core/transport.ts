// What the core needs of one socket, and what the socket tells it. The core
// never sees a WebSocket library: src/transport/ws.ts implements this over ws
// (the only module that touches ws internals), and the unit tests use a fake.

/** Events of one socket, delivered to the session that owns it. */
export interface TransportHandler {
  onMessage (data: Buffer, isBinary: boolean): void
  onPong (): void
  /** the socket is gone (close handshake done, or terminated) */
  onClose (code: number): void
  onError (err: Error): void
}

export interface Transport {
  /** who receives this socket's events; set once, by the session */
  bind (handler: TransportHandler): void
  /**
   * Queues a whole server frame (`frameText` of src/protocol/wire.ts: the same
   * bytes go to every socket of a fan-out) and returns the bytes now waiting.
   * Frames written in one event-loop turn may leave in one write.
   */
  write (framed: Buffer): number
  /** Offers what this turn holds back to the kernel and returns what still waits: the slow-consumer measure. */
  backlog (): number
  ping (): void
  /** starts the close handshake */
  close (code: number, reason: string): void
  /** drops the connection without a close frame */
  terminate (): void
}
