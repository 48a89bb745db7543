// Small statistics helpers.

export function median (values: readonly number[]): number {
  const v = values.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Nearest-rank percentiles of the first `n` samples (sorted in place). */
export function percentiles (samples: Float64Array, n: number, ps: readonly number[]): number[] {
  if (n === 0) return ps.map(() => NaN)
  const sorted = samples.subarray(0, n).sort()
  return ps.map(p => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p / 100 * n) - 1))])
}

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
