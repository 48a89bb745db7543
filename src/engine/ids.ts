// Message ids are `<epoch>:<seq>`. The epoch names one life of a channel's
// stream: when history is lost or reset the epoch changes, so a client's
// `since` from an older life is recognised as unrecoverable instead of being
// read as "nothing happened" (Centrifugo's epoch idea).
import { randomBytes } from 'node:crypto'

const ID_RE = /^([a-z0-9]{1,16}):(\d{1,15})$/

export function newEpoch (): string {
  return randomBytes(6).readUIntBE(0, 6).toString(36)
}

export function formatId (epoch: string, seq: number): string {
  return `${epoch}:${seq}`
}

export function parseId (id: string): { epoch: string, seq: number } | null {
  const m = ID_RE.exec(id)
  if (m === null) return null
  return { epoch: m[1], seq: Number(m[2]) }
}

export function isValidId (id: string): boolean {
  return ID_RE.test(id)
}
