// The demo chat: sign in over REST, then one client and one socket for every
// room: each room is a subscription on that socket, with its own message list.
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
  rooms: $('rooms'),
  leave: $('leave'),
  panels: $('room-panels'),
  sendForm: $('send-form'),
  text: $('text'),
  send: $('send'),
  people: $('people'),
  peopleRoom: $('people-room'),
  events: $('events')
}

/** @type {{ userId: string, access: string, accessExp: number, refresh: string } | null} */
let session = null
let client = null
let clientListeners = []
/**
 * channel → { channel, sub, tab, panel, list, people: Map<userId, 'online' | 'offline' | 'active'>, unread, ended, offs }
 * in tab order
 */
const rooms = new Map()
let selected = null
let roomSeq = 0
let refreshing = null
// what the rooms said when they came back after the latest reconnect
let recovery = { caughtUp: false, lost: false }

const DEFAULT_ROOMS = ['room:lobby', 'room:games']

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

function addMessage (room, frame) {
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
  room.list.append(li)
  scrollToEnd(room.list)
  if (room !== selected) {
    room.unread++
    renderTab(room)
  }
}

function addSystem (room, text) {
  if (!room) return
  const li = document.createElement('li')
  li.className = 'system'
  li.textContent = text
  room.list.append(li)
  scrollToEnd(room.list)
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
  els.peopleRoom.textContent = selected ? selected.channel : '—'
  if (!selected) return
  const order = { online: 0, active: 1, offline: 2 }
  const list = [...selected.people].sort((a, b) => order[a[1]] - order[b[1]] || a[0].localeCompare(b[0]))
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

function setPerson (room, userId, status) {
  // a message proves activity but not presence: never downgrade "online" to "active"
  if (status === 'active' && room.people.get(userId) === 'online') return
  room.people.set(userId, status)
  if (room === selected) renderPeople()
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
  updateComposer()
}

// while reconnecting the client keeps what is sent and publishes it once the room is back
function updateComposer () {
  const state = els.status.dataset.state
  const usable = (state === 'open' || state === 'reconnecting') && selected !== null && !selected.ended
  els.text.disabled = !usable
  els.send.disabled = !usable
  els.leave.disabled = selected === null
}

function showOnline () {
  if (!client || client.state !== 'open') return
  let text = 'Online'
  if (recovery.caughtUp) text = 'Online — caught up'
  if (recovery.lost) text = 'Online — some messages were missed'
  showStatus('open', text)
}

function onState (ev) {
  // a socket that goes takes every room with it until the next `subscribed`
  for (const room of rooms.values()) renderTab(room)
  const why = ev.code !== undefined ? ` (${ev.code} ${ev.reason || CLOSE_REASONS[ev.code] || ''})` : ''
  switch (ev.state) {
    case 'connecting':
      showStatus('connecting', 'Connecting…')
      break
    case 'open':
      recovery = { caughtUp: false, lost: false }
      showOnline()
      logEvent(ev.from === 'connecting' ? 'connected: one socket for every room' : 'reconnected; rejoining every room')
      break
    case 'reconnecting': {
      const secs = (ev.delay / 1000).toFixed(1)
      showStatus('reconnecting', `Reconnecting in ${secs} s (attempt ${ev.attempt})…`)
      logEvent(`reconnecting, attempt ${ev.attempt} in ${secs} s${why}`)
      break
    }
    case 'closed':
      showStatus('closed', `Disconnected${why}`)
      logEvent(`closed${why}`)
      break
  }
}

// --- rooms ---------------------------------------------------------------------------

function renderTab (room) {
  room.count.textContent = room.unread > 0 ? String(room.unread) : ''
  room.count.hidden = room.unread === 0
  room.tab.setAttribute('aria-label', `${room.channel}${room.unread > 0 ? `, ${room.unread} unread` : ''}${room.ended ? ', left' : ''}`)
  room.tab.dataset.state = room.ended ? 'ended' : room.sub.state
}

function select (room) {
  selected = room ?? null
  for (const r of rooms.values()) {
    const on = r === selected
    r.tab.setAttribute('aria-selected', String(on))
    r.tab.tabIndex = on ? 0 : -1
    r.panel.hidden = !on
  }
  els.channelName.textContent = selected ? selected.channel : '—'
  document.title = selected ? `${selected.channel} — Gatecast demo` : 'Gatecast demo'
  if (selected) {
    selected.unread = 0
    renderTab(selected)
    scrollToEnd(selected.list)
  }
  renderPeople()
  updateComposer()
}

function addRoom (sub) {
  const old = rooms.get(sub.channel)
  if (old && old.sub === sub) return old
  // joined again after it ended: a fresh list for the new subscription
  if (old) removeRoom(old)
  const n = ++roomSeq
  const tab = document.createElement('button')
  tab.type = 'button'
  tab.id = `room-tab-${n}`
  tab.className = 'tab'
  tab.dataset.room = sub.channel
  tab.setAttribute('role', 'tab')
  tab.setAttribute('aria-controls', `room-panel-${n}`)
  const name = document.createElement('span')
  name.textContent = sub.channel
  const count = document.createElement('span')
  count.className = 'unread'
  count.hidden = true
  tab.append(name, count)
  const panel = document.createElement('div')
  panel.id = `room-panel-${n}`
  panel.className = 'room-panel'
  panel.setAttribute('role', 'tabpanel')
  panel.setAttribute('aria-labelledby', tab.id)
  panel.hidden = true
  const list = document.createElement('ol')
  list.className = 'messages'
  list.dataset.room = sub.channel
  list.setAttribute('role', 'log')
  list.setAttribute('aria-live', 'polite')
  list.setAttribute('aria-relevant', 'additions')
  list.tabIndex = 0
  panel.append(list)
  els.rooms.append(tab)
  els.panels.append(panel)

  const room = { channel: sub.channel, sub, tab, count, panel, list, people: new Map(), unread: 0, ended: false, joined: false, offs: [] }
  rooms.set(sub.channel, room)
  tab.addEventListener('click', () => select(room))
  room.offs = [
    sub.on('message', (m) => {
      addMessage(room, m)
      if (m.from !== null) setPerson(room, m.from, 'active')
    }),
    sub.on('presence', (p) => {
      setPerson(room, p.userId, p.event === 'join' ? 'online' : 'offline')
      logEvent(`${p.userId} ${p.event === 'join' ? 'joined' : 'left'} ${room.channel}`)
    }),
    sub.on('subscribed', (ev) => onSubscribed(room, ev)),
    sub.on('unsubscribed', (ev) => onUnsubscribed(room, ev)),
    sub.on('error', (e) => logEvent(`${room.channel}: ${e.code} ${e.message}`))
  ]
  renderTab(room)
  if (selected === null) select(room)
  return room
}

function onSubscribed (room, ev) {
  renderTab(room)
  if (session) setPerson(room, session.userId, 'online')
  if (ev.recovered === true) recovery.caughtUp = true
  if (ev.recovered === false) {
    recovery.lost = true
    addSystem(room, 'Some messages were missed while offline (history no longer reaches back that far).')
  }
  if (!room.joined) {
    room.joined = true
    if (ev.by === 'server') addSystem(room, 'The server added you to this room.')
    logEvent(`${ev.by === 'server' ? 'added by the server to' : 'joined'} ${room.channel}`)
  } else {
    logEvent(`${room.channel}: ${ev.recovered === undefined ? 'rejoined' : ev.recovered ? 'rejoined, caught up on missed messages' : 'rejoined, some messages lost'}`)
  }
  showOnline()
}

const ENDED = {
  server: 'The server removed you from this room.',
  forbidden: 'Your access to this room was withdrawn.'
}

function onUnsubscribed (room, ev) {
  if (ev.reason === 'client') {
    logEvent(`left ${room.channel}`)
    removeRoom(room)
    return
  }
  if (ev.reason === 'closed') return
  room.ended = true
  renderTab(room)
  const text = ENDED[ev.reason] ?? `Could not join this room: ${ev.error?.message ?? ev.reason}${ev.error ? ` (${ev.error.code})` : ''}.`
  addSystem(room, text)
  logEvent(`${room.channel}: ${text}`)
  updateComposer()
}

function removeRoom (room) {
  for (const off of room.offs) off()
  room.tab.remove()
  room.panel.remove()
  rooms.delete(room.channel)
  if (selected === room) select(rooms.values().next().value)
}

function joinRoom (channel) {
  const known = rooms.get(channel)
  if (known && !known.ended) {
    select(known)
    return
  }
  select(addRoom(client.subscribe(channel)))
}

// --- connection ----------------------------------------------------------------------

function disconnect () {
  for (const off of clientListeners) off()
  clientListeners = []
  if (client) client.close()
  client = null
  window.gatecastDemo.client = null
  for (const room of [...rooms.values()]) removeRoom(room)
  selected = null
  els.events.replaceChildren()
}

function connectRooms () {
  disconnect()
  // no channel: the socket opens on /ws, and every room is a subscribe on it
  client = connect({ url: location.origin, getToken })
  window.gatecastDemo.client = client
  clientListeners = [
    client.on('state', onState),
    // a room the server API added: its 'subscribed' event follows and says so
    client.on('subscription', addRoom),
    client.on('direct', (d) => addSystem(selected, `Direct message${d.from ? ` from ${d.from}` : ''}: ${JSON.stringify(d.data)}`)),
    client.on('refreshed', () => logEvent('token refreshed')),
    client.on('error', (e) => logEvent(e.code === 'socket_error' ? 'connection attempt failed' : `error: ${e.code} ${e.message}`))
  ]
  onState({ state: client.state })
  for (const channel of DEFAULT_ROOMS) addRoom(client.subscribe(channel))
  select(rooms.get(DEFAULT_ROOMS[0]))
}

function signedIn () {
  els.loginPanel.hidden = true
  els.chatPanel.hidden = false
  els.whoami.textContent = session.userId
  connectRooms()
  els.text.focus()
}

function signedOut (message) {
  disconnect()
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
  if (!client) return
  joinRoom(els.channel.value)
  els.channel.value = ''
})

// arrow keys move between the room tabs (one tab stop for the whole list)
els.rooms.addEventListener('keydown', (ev) => {
  const list = [...rooms.values()]
  const i = list.indexOf(selected)
  if (i === -1) return
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: list.length - 1 }[ev.key]
  if (next === undefined) return
  ev.preventDefault()
  const room = list[(next + list.length) % list.length]
  select(room)
  room.tab.focus()
})

els.leave.addEventListener('click', () => {
  const room = selected
  if (!room) return
  // an ended room only has its tab left to close
  if (room.ended) removeRoom(room)
  else room.sub.unsubscribe()
})

els.sendForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const text = els.text.value.trim()
  const room = selected
  if (!text || !room || room.ended) return
  els.text.value = ''
  room.sub.publish({ text }).catch((err) => {
    addSystem(room, `Not sent (${err.code}): ${text}`)
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

// for the console (and tests): window.gatecastDemo.client, window.gatecastDemo.rooms
window.gatecastDemo = { client: null, rooms }
els.username.focus()
