// A Gatecast backend in plain Node: the rules of examples/php-backend/index.php,
// with node:http, node:crypto and the global fetch, no dependencies.
//
// Gatecast POSTs one JSON body per socket event to BACKEND_URL/<event>
// (connect, subscribe, publish, close), signed with BACKEND_SECRET; this server
// answers them and talks back through Gatecast's server API.
//
//   BACKEND_SECRET=… GATECAST_URL=http://127.0.0.1:3000 GATECAST_API_KEY=… \
//     node examples/node-backend.js
//   BACKEND_URL=http://127.0.0.1:8000 BACKEND_SECRET=… API_KEY=… npx gatecast
//
// The rules of this little chat:
//   connect    every user joins `lobby` and a private `inbox#<user>`; banned users are refused
//   subscribe  `inbox#…` channels are personal: only `inbox#<your own id>`
//   publish    a message with a banned word is dropped; `/msg bob hello` goes to bob alone
//   close      one JSON line per closed socket in LOG_FILE
//
// Environment: BACKEND_SECRET (required), GATECAST_URL (default
// http://127.0.0.1:3000), GATECAST_API_KEY, BANNED_WORDS (comma list, default
// "spam"), BANNED_USERS (default "mallory"), LOG_FILE (default: stderr),
// HOST (default 127.0.0.1), PORT (default 8000; 0 = any free port).
// It prints `listening on http://HOST:PORT` once it accepts calls.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { createServer } from 'node:http'

const env = (name, fallback = '') => process.env[name] || fallback
const list = (name, fallback) => env(name, fallback).split(',').map(s => s.trim()).filter(Boolean)

const SECRET = env('BACKEND_SECRET')
const GATECAST_URL = env('GATECAST_URL', 'http://127.0.0.1:3000').replace(/\/+$/, '')
const API_KEY = env('GATECAST_API_KEY')
const BANNED_WORDS = list('BANNED_WORDS', 'spam')
const BANNED_USERS = list('BANNED_USERS', 'mallory')
const LOG_FILE = env('LOG_FILE')
const MAX_BODY = 1024 * 1024

if (SECRET === '') {
  console.error('BACKEND_SECRET is not set: Gatecast signs every call with it')
  process.exit(1)
}

/** One answer to Gatecast: a status and a JSON body (none for 204). */
const answer = (status, body = {}) => ({ status, body })
const refuse = (status, error, message) => answer(status, { error, message })

/** Gatecast's server API: GatewayWorker's Gateway::sendToUid(). Throws unless 2xx. */
async function sendToUser (userId, data) {
  const res = await fetch(`${GATECAST_URL}/api/users/${encodeURIComponent(userId)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ data }),
    // Gatecast waits BACKEND_TIMEOUT (2 s by default) for this server's answer
    signal: AbortSignal.timeout(1500)
  })
  if (!res.ok) throw new Error(`POST /api/users/${userId}/messages: ${res.status} ${await res.text()}`)
}

/** The private channel of a user, or null for an id that cannot be part of a channel name (a comma would list several users). */
const inboxOf = (userId) => typeof userId === 'string' && /^[A-Za-z0-9_.:@-]{1,120}$/.test(userId) ? `inbox#${userId}` : null

/** The text of a chat message: {"text": "…"} as the demo page sends it, or a bare string. */
function textOf (data) {
  if (typeof data === 'string') return data
  if (data !== null && typeof data === 'object' && typeof data.text === 'string') return data.text
  return null
}

const escape = (word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
// each word on its own, any case: "Spam!" yes, "spammer" no
const bannedWords = BANNED_WORDS.map(w => new RegExp(`(?<![\\p{L}\\p{N}_])${escape(w)}(?![\\p{L}\\p{N}_])`, 'iu'))

// The business logic: one function per event, as in GatewayWorker's Events class.
const events = {
  // { connectionId, userId, claims, channel, remoteAddress }: 2xx accepts, with the
  // channels to join and `data` for the `ready` frame; 401/403/429 refuse the upgrade
  async connect ({ userId }) {
    if (BANNED_USERS.includes(userId)) return refuse(403, 'banned', `${userId} is banned`)
    const inbox = inboxOf(userId)
    return answer(200, {
      channels: inbox === null ? ['lobby'] : ['lobby', inbox],
      data: { welcome: `Welcome, ${userId}!`, inbox }
    })
  },

  // { connectionId, userId, channel }: 2xx allows, 403 answers `error` `forbidden`
  async subscribe ({ userId, channel }) {
    // Gatecast keeps `#` channels to the users they list; here an inbox is its owner's alone
    if (String(channel).startsWith('inbox#') && channel !== inboxOf(userId)) {
      return refuse(403, 'forbidden', `${channel} is not your inbox`)
    }
    return answer(200)
  },

  // { connectionId, userId, channel, data }: 2xx fans out ({"data": …} would replace it),
  // {"skip": true} drops it silently; 403 / 422 answer `forbidden` / `bad_request`
  async publish ({ userId, data }) {
    const text = textOf(data)
    if (text === null) return answer(200)
    if (bannedWords.some(re => re.test(text))) return answer(200, { skip: true })
    if (/^\/msg(\s|$)/.test(text)) {
      const m = /^\/msg\s+(\S+)\s+(.*\S)/s.exec(text)
      if (m === null) return refuse(422, 'bad_request', 'usage: /msg <user> <text>')
      try {
        await sendToUser(m[1], { from: userId, text: m[2] })
      } catch (err) {
        console.error(`gatecast: ${err.message}`)
        // any status but 2xx/403/422: the client gets `error` `unavailable`
        return refuse(502, 'unavailable', 'could not deliver the message')
      }
      // delivered privately: not to the channel
      return answer(200, { skip: true })
    }
    return answer(200)
  },

  // { connectionId, userId, channels, code }: nobody waits for the answer
  async close ({ connectionId, userId, channels, code }) {
    const line = JSON.stringify({ event: 'close', connectionId, userId, channels, code, at: new Date().toISOString() }) + '\n'
    if (LOG_FILE === '') process.stderr.write(line)
    else appendFileSync(LOG_FILE, line)
    return answer(204)
  }
}

/** X-Gatecast-Signature: sha256=<hex HMAC-SHA256 of the raw body>, compared in constant time. */
function signatureIsValid (rawBody, header) {
  const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(rawBody).digest('hex'))
  const given = Buffer.from(typeof header === 'string' ? header : '')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

async function readBody (req) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > MAX_BODY) return null
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

async function handle (req) {
  if (req.method !== 'POST') return refuse(405, 'method_not_allowed', 'Gatecast POSTs its events')
  const rawBody = await readBody(req)
  if (rawBody === null) return refuse(413, 'too_large', 'body over 1 MiB')
  // the signature covers the bytes as sent: check them before decoding anything
  if (!signatureIsValid(rawBody, req.headers['x-gatecast-signature'])) {
    return refuse(401, 'bad_signature', 'missing or wrong X-Gatecast-Signature')
  }
  let event
  try {
    event = JSON.parse(rawBody.toString('utf8'))
  } catch {
    event = null
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return refuse(400, 'bad_request', 'the body is not a JSON object')
  // BACKEND_URL may have a path of its own: the event is the last segment (X-Gatecast-Event says the same)
  const name = new URL(req.url, 'http://backend').pathname.split('/').pop()
  if (!Object.hasOwn(events, name)) return refuse(404, 'unknown_event', `no such event: ${name}`)
  return events[name](event)
}

const server = createServer((req, res) => {
  handle(req).catch((err) => {
    console.error(err)
    return refuse(500, 'internal', 'the backend failed')
  }).then(({ status, body }) => {
    if (status === 204) {
      res.writeHead(204).end()
      return
    }
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
  })
})

const host = env('HOST', '127.0.0.1')
server.listen(Number(env('PORT', '8000')), host, () => {
  console.log(`listening on http://${host}:${server.address().port}`)
})

// stop on Ctrl-C or a supervisor's SIGTERM: calls in flight finish, then exit
// (without waiting for fetch's kept-alive connection to Gatecast to time out)
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)))
