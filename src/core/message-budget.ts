// A socket's publish budget: a token bucket refilled at `rate` per second,
// holding up to twice that for bursts. A second's worth refused in a row
// without the bucket filling up again is abuse, not a burst.
export type BudgetVerdict = 'allowed' | 'refused' | 'exceeded'

export class MessageBudget {
  readonly #rate: number
  #tokens: number
  #lastRefill = Date.now()
  #rejected = 0

  constructor (rate: number) {
    this.#rate = rate
    this.#tokens = rate * 2
  }

  take (now = Date.now()): BudgetVerdict {
    const rate = this.#rate
    const burst = rate * 2
    this.#tokens = Math.min(burst, this.#tokens + (now - this.#lastRefill) * rate / 1000)
    this.#lastRefill = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      if (this.#tokens >= burst - 1) this.#rejected = 0
      return 'allowed'
    }
    return ++this.#rejected >= rate ? 'exceeded' : 'refused'
  }
}
