// The one "wait until a condition holds" helper of the tests, and sleep().
// Every polling wait in test/ goes through here, so a timeout always reads the
// same way: what was awaited, and for how long.

export interface WaitOptions {
  /** give up after this many ms (default 5000) */
  ms?: number
  /** what is awaited, for the timeout message; a function is called at the timeout, so it can show the state then */
  what?: string | (() => string)
  /** ms between two checks (default 10) */
  every?: number
}

export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError'
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Polls `cond` (sync or async) every `every` ms until it returns true; throws a
 * WaitTimeoutError naming `what` and `ms` once `ms` have passed. The condition
 * is checked at least once, and once more after the deadline, so a slow turn
 * never fails a wait whose condition holds by then. An error thrown by `cond`
 * is passed on as is.
 */
export async function waitFor (cond: () => boolean | Promise<boolean>, { ms = 5000, what = 'condition', every = 10 }: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) {
      throw new WaitTimeoutError(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)
    }
    await sleep(every)
  }
}

/**
 * waitFor that answers instead of throwing: true once `cond` holds, false at the
 * deadline. For tests that assert on the outcome themselves (`t.ok(...)`) or read
 * the state after a bounded wait.
 */
export async function eventually (cond: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<boolean> {
  try {
    await waitFor(cond, opts)
    return true
  } catch (err) {
    if (err instanceof WaitTimeoutError) return false
    throw err
  }
}

/** Resolves with `p`, or rejects naming `what` when it has not settled within `ms`. */
export async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
