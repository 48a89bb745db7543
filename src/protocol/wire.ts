// The one WebSocket framing Gatecast does itself. A module of its own, with no
// imports, so the benchmark's corked bare-ws server can use the same code
// without loading Gatecast.

/**
 * A whole server→client text frame (RFC 6455: FIN, opcode 1, unmasked), built
 * once per message: every socket then gets the same bytes.
 */
export function frameText (text: string): Buffer {
  const n = Buffer.byteLength(text)
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(head + n)
  out[0] = 0x81
  if (head === 2) {
    out[1] = n
  } else if (head === 4) {
    out[1] = 126
    out.writeUInt16BE(n, 2)
  } else {
    out[1] = 127
    out.writeUInt32BE(0, 2)
    out.writeUInt32BE(n, 6)
  }
  out.write(text, head)
  return out
}
