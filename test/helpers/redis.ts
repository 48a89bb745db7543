// Each Redis test gets a key prefix of its own and deletes its keys afterwards.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Teardown { teardown: (fn: () => unknown) => void }

export function redisPrefix (t: Teardown, url = REDIS_URL): string {
  const prefix = `gctest-${randomBytes(4).toString('hex')}`
  t.teardown(async () => {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
    try {
      await r.connect()
      const keys = await r.keys(`${prefix}:*`)
      if (keys.length > 0) await r.del(...keys)
    } catch {} finally { r.disconnect() }
  })
  return prefix
}
