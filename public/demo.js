// The demo chat: sign in over REST, then one client per joined channel.
// Tokens live in memory only; reloading the page means signing in again.
/* global document, window, location, fetch */
import { connect } from '/demo/client.js'

const $ = (id) => document.getElementById(id)
const els = {
  status: $('status'),
  loginPanel: $('login-panel'),
  loginForm: $('login-form'),
  loginError: $('login-error'),
  username: $('username'),
  password: $('password'),
  chatPanel: $('chat-panel'),
  channelForm: $('channel-form'),
  channel: $('channel'),
  channelName: $('channel-name'),
  whoami: $('whoami'),
  drop: $('drop'),
  logout: $('logout'),
  messages: $('messages'),
  sendForm: $('send-form'),
  text: $('text'),
  send: $('send'),
  people: $('people'),
  events: $('events')
}

/** @type {{ userId: string, access: string, accessExp: number, refresh: string } | null} */
let session = null
let client = null
let unsubscribe = []
/** userId → 'online' | 'offline' | 'active' */
const people = new Map()
let refreshing = null

async function postJson (path, body, bearer) {
  const headers = { 'content-type': 'application/json' }
  if (bearer) headers.authorization = `Bearer ${bearer}`
  const res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body ?? {}) })
  const text = await res.text()
  let json = null
  try { json = text ? JSON.parse(text) : null } catch {}
  return { status: res.status, ok: res.ok, body: json }
}

function claims (jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(window.atob(part.padEnd(part.length + (4 - part.length % 4) % 4, '=')))
  } catch {
    return {}
  }
}

function setSession (pair) {
  const c = claims(pair.access_token)
  session = {
    userId: String(c.sub ?? c.user_id ?? els.username.value),
    access: pair.access_token,
    accessExp: Date.now() + pair.expires_in * 1000,
    refresh: pair.refresh_token
  }
}

// One refresh at a time: refresh tokens rotate, and reusing an old one revokes the family.
function refreshSession () {
  if (refreshing) return refreshing
  refreshing = (async () => {
    const res = await postJson('/auth/refresh', { refresh_token: session.refresh })
    if (!res.ok) {
      if (res.status === 401) signedOut('Your session ended. Please sign in again.')
      throw new Error(res.body?.message ?? `refresh failed (${res.status})`)
    }
    setSession(res.body)
    return session.access
  })().finally(() => { refreshing = null })
  return refreshing
}

// The client asks for a token to connect, after a 4401 and before the current one expires.
async function getToken ({ reason }) {
  if (session === null) throw new Error('signed out')
  const fresh = session.accessExp - Date.now() > 60_000
  if ((reason === 'connect' || reason === 'reconnect') && fresh) return session.access
  return refreshSession()
}

// --- rendering ------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })

function scrollToEnd (list) {
  list.scrollTop = list.scrollHeight
}

function addMessage (frame) {
  const li = document.createElement('li')
  li.dataset.id = frame.id
  if (session && frame.from === session.userId) li.classList.add('mine')
  const meta = document.createElement('div')
  meta.className = 'meta'
  const from = document.createElement('span')
  from.className = 'from'
  from.textContent = frame.from ?? 'server'
  const time = document.createElement('time')
  time.dateTime = new Date(frame.ts).toISOString()
  time.textContent = timeFormat.format(frame.ts)
  meta.append(from, time)
  const text = document.createElement('p')
  text.className = 'text'
  const data = frame.data
  text.textContent = data !== null && typeof data === 'object' && typeof data.text === 'string' ? data.text : JSON.stringify(data)
  li.append(meta, text)
  els.messages.append(li)
  scrollToEnd(els.messages)
}

function addSystem (text) {
  const li = document.createElement('li')
  li.className = 'system'
  li.textContent = text
  els.messages.append(li)
  scrollToEnd(els.messages)
}

function logEvent (text) {
  const li = document.createElement('li')
  const time = document.createElement('time')
  time.textContent = timeFormat.format(Date.now())
  li.append(time, ' ', text)
  els.events.append(li)
  while (els.events.children.length > 100) els.events.firstElementChild.remove()
  scrollToEnd(els.events)
}

function renderPeople () {
  els.people.replaceChildren()
  const order = { online: 0, active: 1, offline: 2 }
  const list = [...people].sort((a, b) => order[a[1]] - order[b[1]] || a[0].localeCompare(b[0]))
  for (const [userId, status] of list) {
    const li = document.createElement('li')
    const name = document.createElement('span')
    name.textContent = userId + (session && userId === session.userId ? ' (you)' : '')
    const badge = document.createElement('span')
    badge.className = 'presence'
    badge.dataset.status = status
    badge.textContent = status
    li.append(name, badge)
    els.people.append(li)
  }
}

function setPerson (userId, status) {
  // a message proves activity but not presence: never downgrade "online" to "active"
  if (status === 'active' && people.get(userId) === 'online') return
  people.set(userId, status)
  renderPeople()
}

const CLOSE_REASONS = {
  1001: 'server shutting down',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'message too large',
  4401: 'token expired or revoked',
  4403: 'disconnected by the server',
  4408: 'too slow to keep up',
  4429: 'too many messages'
}

function showStatus (state, text) {
  els.status.dataset.state = state
  els.status.textContent = text
  const open = state === 'open'
  els.text.disabled = !(open || state === 'reconnecting')
  els.send.disabled = els.text.disabled
}

function onState (ev) {
  const why = ev.code !== undefined ? ` (${ev.code} ${ev.reason || CLOSE_REASONS[ev.code] || ''})` : ''
  switch (ev.state) {
    case 'connecting':
      showStatus('connecting', 'Connecting…')
      break
    case 'open': {
      let text = 'Online'
      if (ev.recovered === true) text = 'Online — caught up'
      if (ev.recovered === false) text = 'Online — some messages were missed'
      showStatus('open', text)
      if (session) setPerson(session.userId, 'online')
      if (ev.recovered === false) addSystem('Some messages were missed while offline (history no longer reaches back that far).')
      logEvent(ev.recovered === undefined ? 'connected' : ev.recovered ? 'reconnected, caught up on missed messages' : 'reconnected, some messages lost')
      break
    }
    case 'reconnecting': {
      const secs = (ev.delay / 1000).toFixed(1)
      showStatus('reconnecting', `Reconnecting in ${secs} s (attempt ${ev.attempt})…`)
      logEvent(`reconnecting, attempt ${ev.attempt} in ${secs} s${why}`)
      break
    }
    case 'closed':
      showStatus('closed', `Disconnected${why}`)
      logEvent(`closed${why}`)
      els.text.disabled = true
      els.send.disabled = true
      break
  }
}

// --- channel -------------------------------------------------------------------------

function leave () {
  for (const off of unsubscribe) off()
  unsubscribe = []
  if (client) client.close()
  client = null
}

function join (channel) {
  leave()
  people.clear()
  els.messages.replaceChildren()
  els.events.replaceChildren()
  els.channelName.textContent = channel
  document.title = `${channel} — Gatecast demo`
  client = connect({ url: location.origin, channel, getToken })
  window.gatecastDemo.client = client
  unsubscribe = [
    client.on('state', onState),
    client.on('message', (m) => {
      addMessage(m)
      if (m.from !== null) setPerson(m.from, 'active')
    }),
    client.on('direct', (d) => addSystem(`Direct message${d.from ? ` from ${d.from}` : ''}: ${JSON.stringify(d.data)}`)),
    client.on('presence', (p) => {
      setPerson(p.userId, p.event === 'join' ? 'online' : 'offline')
      logEvent(`${p.userId} ${p.event === 'join' ? 'joined' : 'left'}`)
    }),
    client.on('refreshed', () => logEvent('token refreshed')),
    client.on('error', (e) => logEvent(e.code === 'socket_error' ? 'connection attempt failed' : `error: ${e.code} ${e.message}`))
  ]
  onState({ state: client.state })
}

function signedIn () {
  els.loginPanel.hidden = true
  els.chatPanel.hidden = false
  els.whoami.textContent = session.userId
  join(els.channel.value)
  els.text.focus()
}

function signedOut (message) {
  leave()
  session = null
  els.chatPanel.hidden = true
  els.loginPanel.hidden = false
  els.password.value = ''
  els.loginError.textContent = message ?? ''
  showStatus('signed-out', 'Signed out')
  els.username.focus()
}

// --- forms ---------------------------------------------------------------------------

els.loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  els.loginError.textContent = ''
  const username = els.username.value.trim()
  const password = els.password.value
  if (!username || !password) {
    els.loginError.textContent = 'Enter a user name and a password.'
    return
  }
  const button = els.loginForm.querySelector('button')
  button.disabled = true
  try {
    const res = await postJson('/auth/login', { username, password })
    if (!res.ok) {
      els.loginError.textContent = res.status === 429 ? 'Too many attempts; wait a moment.' : (res.body?.message ?? 'Sign-in failed.')
      return
    }
    setSession(res.body)
    signedIn()
  } catch (err) {
    els.loginError.textContent = `Sign-in failed: ${err.message}`
  } finally {
    button.disabled = false
  }
})

els.channelForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  if (!els.channel.checkValidity()) {
    els.channel.reportValidity()
    return
  }
  join(els.channel.value)
})

els.sendForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const text = els.text.value.trim()
  if (!text || !client) return
  els.text.value = ''
  // while reconnecting the client keeps the message and sends it once the socket is back
  client.publish({ text }).catch((err) => {
    addSystem(`Not sent (${err.code}): ${text}`)
  })
})

els.drop.addEventListener('click', () => {
  if (client) client.reconnect()
})

els.logout.addEventListener('click', async () => {
  const s = session
  signedOut()
  if (s) await postJson('/auth/logout', { refresh_token: s.refresh }, s.access).catch(() => {})
})

// for the console (and tests): window.gatecastDemo.client
window.gatecastDemo = { client: null }
els.username.focus()
