// A Gatecast plugin: business logic as an ordinary Fastify plugin.
//
//   npm run build                      (once: 'gatecast' resolves to dist/)
//   npx gatecast serve --plugin ./examples/profanity-filter.js
//   PLUGINS=./examples/profanity-filter.js npx gatecast       (the same, by environment)
//
// Every publish (clients and the server API alike) passes through the
// `onPublish` hook before fan-out: bad words in string data are masked, and a
// message that is all shouting is refused — the client gets an `error` frame
// with code `forbidden`, the server API a 403. It also adds GET /stats.
//
// Options (when registered from code): { words: ['…'], minShoutLetters: 5 }
import fp from 'fastify-plugin'
import { GatecastError } from 'gatecast'

const DEFAULT_WORDS = ['darn', 'heck', 'frak']

function escape (word) {
  return word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

async function profanityFilter (app, opts) {
  const words = opts.words ?? DEFAULT_WORDS
  const minShoutLetters = opts.minShoutLetters ?? 5
  const badWords = new RegExp(`\\b(${words.map(escape).join('|')})\\b`, 'gi')

  const mask = (text) => text.replace(badWords, w => '*'.repeat(w.length))

  // "all shouting": enough letters, and not one of them lower case
  const isShouting = (text) => {
    const letters = text.match(/\p{L}/gu) ?? []
    return letters.length >= minShoutLetters && letters.every(l => l === l.toUpperCase() && l !== l.toLowerCase())
  }

  // strings anywhere in the payload: a bare string, or fields of objects and arrays
  const clean = (value) => {
    if (typeof value === 'string') {
      if (isShouting(value)) throw new GatecastError(403, 'forbidden', 'please do not shout')
      return mask(value)
    }
    if (Array.isArray(value)) return value.map(clean)
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]))
    }
    return value
  }

  app.gatecast.onPublish((ctx) => {
    return { data: clean(ctx.data) }
  })

  app.get('/stats', async () => ({ channels: await app.gatecast.channels() }))
}

export default fp(profanityFilter, {
  name: 'profanity-filter',
  fastify: '5.x',
  decorators: { fastify: ['gatecast'] }
})
