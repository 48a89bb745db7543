// One place turns a channel name into its rules: namespace options, user-limited
// `#` channels and the token's `channels` claim.
import type { NamespaceOptions } from '../config/config.ts'
import { CHANNEL_PATTERN } from '../protocol/frames.ts'

export type { NamespaceOptions }

export interface ChannelOptions {
  namespace: string | null
  publish: boolean
  presence: boolean
  historySize: number
  historyTtl: number
  /** user ids after `#`, or null when the channel is open to everyone allowed by the token */
  allowedUsers: readonly string[] | null
}

const channelRe = new RegExp(CHANNEL_PATTERN)

export function isValidChannel (name: string): boolean {
  return channelRe.test(name)
}

export class ChannelRules {
  readonly #defaults: NamespaceOptions
  readonly #namespaces: Record<string, NamespaceOptions>
  // channel names repeat (many sockets, one channel): resolve each once
  readonly #cache = new Map<string, ChannelOptions>()

  constructor (defaults: { historySize: number, historyTtl: number }, namespaces: Record<string, NamespaceOptions> = {}) {
    this.#defaults = { publish: true, presence: false, ...defaults }
    this.#namespaces = namespaces
  }

  resolve (channel: string): ChannelOptions {
    let opts = this.#cache.get(channel)
    if (opts !== undefined) return opts
    const hash = channel.indexOf('#')
    const base = hash === -1 ? channel : channel.slice(0, hash)
    const colon = base.indexOf(':')
    const namespace = colon === -1 ? null : base.slice(0, colon)
    const ns = namespace === null ? undefined : this.#namespaces[namespace]
    const merged = { ...this.#defaults, ...ns }
    opts = {
      namespace,
      publish: merged.publish ?? true,
      presence: merged.presence ?? false,
      historySize: merged.historySize ?? 0,
      historyTtl: merged.historyTtl ?? 0,
      allowedUsers: hash === -1 ? null : channel.slice(hash + 1).split(',').filter(u => u !== '')
    }
    if (this.#cache.size > 10_000) this.#cache.clear()
    this.#cache.set(channel, opts)
    return opts
  }
}

const patternCache = new Map<string, RegExp>()

function patternToRegExp (pattern: string): RegExp {
  let re = patternCache.get(pattern)
  if (re === undefined) {
    const body = pattern.split('*').map(part => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')
    re = new RegExp(`^${body}$`)
    if (patternCache.size > 10_000) patternCache.clear()
    patternCache.set(pattern, re)
  }
  return re
}

/** `channels` claim: glob patterns with `*`; absent means every channel. */
export function channelAllowedByClaim (channel: string, patterns: readonly string[] | undefined): boolean {
  if (patterns === undefined) return true
  return patterns.some(p => patternToRegExp(p).test(channel))
}

export function userMayJoin (channel: string, opts: ChannelOptions, userId: string, patterns: readonly string[] | undefined): boolean {
  if (opts.allowedUsers !== null && !opts.allowedUsers.includes(userId)) return false
  return channelAllowedByClaim(channel, patterns)
}
