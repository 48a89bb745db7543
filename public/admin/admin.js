// The admin console: sign in (a user with role admin, or the API key), then
// one live feed (GET /admin/feed, server-sent events read with fetch so the
// credentials ride in a header) draws the cluster about once a second. Every
// action goes through the server API (/api) and is confirmed first.
// Credentials live in this module's memory only: a reload signs out.
// Whatever the server sends (user ids, channel names, message data) comes from
// clients: it reaches the page through textContent only, never as markup.
/* global document, window, fetch, TextDecoder, AbortController, URLSearchParams */
import { drawChart } from '/admin/charts.js'

const $ = (id) => document.getElementById(id)
const WINDOW_S = 300
const CHANNEL_RE = /^[A-Za-z0-9_.:@#,-]{1,128}$/
// no event for this long: the feed is stuck (a proxy, a sleeping laptop); open a new one
const STALE_MS = 6000

/** @type {null | { kind: 'token', access: string, refresh: string, userId: string } | { kind: 'key', key: string }} */
let creds = null
let refreshing = null
/** @type {null | { ctrl: AbortController, lastEvent: number }} */
let feed = null
const focus = { channel: null, user: null }
/** [second, messages published, connections], oldest first */
let points = []
let lastSnapshot = null

class ApiError extends Error {
  constructor (status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.code ?? null
  }
}

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

async function readJson (res) {
  const text = await res.text()
  try { return text ? JSON.parse(text) : null } catch { return null }
}

function claims (jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(window.atob(part.padEnd(part.length + (4 - part.length % 4) % 4, '=')))
  } catch {
    return {}
  }
}

const isAdmin = (jwt) => Array.isArray(claims(jwt).roles) && claims(jwt).roles.includes('admin')

function authHeaders (c = creds) {
  if (c === null) return {}
  return c.kind === 'key' ? { 'x-api-key': c.key } : { authorization: `Bearer ${c.access}` }
}

/** A call with the console's credentials; an expired token is refreshed once. Throws ApiError. */
async function call (method, path, body) {
  for (let attempt = 0; ; attempt++) {
    if (creds === null) throw new ApiError(401, { message: 'signed out' })
    const headers = authHeaders()
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
    const json = await readJson(res)
    if (res.status === 401 && attempt === 0 && await refresh()) continue
    if (!res.ok) throw new ApiError(res.status, json)
    return json
  }
}

// One refresh at a time: refresh tokens rotate, and reusing an old one revokes the family.
function refresh () {
  if (creds?.kind !== 'token') return Promise.resolve(false)
  refreshing ??= (async () => {
    const mine = creds
    try {
      const res = await fetch('/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: mine.refresh }) })
      const pair = await readJson(res)
      if (!res.ok || creds !== mine || !isAdmin(pair.access_token)) return false
      creds = { ...mine, access: pair.access_token, refresh: pair.refresh_token }
      return true
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

// --- signing in and out ---------------------------------------------------------

function setStatus (state, text) {
  const s = $('status')
  s.dataset.state = state
  s.textContent = text
}

function showError (text) {
  $('login-error').textContent = text
}

async function signInWithPassword (username, password) {
  const res = await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
  const body = await readJson(res)
  if (!res.ok) throw new Error(body?.message ?? `sign-in failed (HTTP ${res.status})`)
  const c = claims(body.access_token)
  const candidate = { kind: 'token', access: body.access_token, refresh: body.refresh_token, userId: String(c.sub ?? c.user_id ?? username) }
  // the server refuses such a token anyway (403); the page says why and drops the session it was given
  if (!isAdmin(body.access_token)) {
    revoke(candidate)
    throw new Error(`${candidate.userId} is not an administrator: the console needs a user with role admin, or the API key`)
  }
  await enter(candidate)
}

/** The server decides: the session route takes exactly what the server API takes. */
async function enter (candidate) {
  creds = candidate
  let session
  try {
    session = await call('GET', '/admin/session')
  } catch (err) {
    creds = null
    if (candidate.kind === 'token') revoke(candidate)
    if (err instanceof ApiError && err.status === 403) throw new Error('not an administrator: the console needs a user with role admin, or the API key')
    if (err instanceof ApiError && err.status === 401) throw new Error(candidate.kind === 'key' ? 'wrong API key' : err.message)
    throw err
  }
  showError('')
  $('password').value = ''
  $('api-key').value = ''
  $('whoami').textContent = session.via === 'api_key' ? 'API key' : `${session.userId} (admin)`
  $('who').hidden = false
  $('login-panel').hidden = true
  $('console').hidden = false
  log('ok', `Signed in ${session.via === 'api_key' ? 'with the API key' : `as ${session.userId}`} on node ${session.nodeId}`)
  startFeed()
}

function revoke (c) {
  fetch('/auth/logout', { method: 'POST', headers: { ...authHeaders(c), 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: c.refresh }) }).catch(() => {})
}

function signOut (message = '') {
  stopFeed()
  if (creds?.kind === 'token') revoke(creds)
  creds = null
  focus.channel = null
  focus.user = null
  points = []
  lastSnapshot = null
  // nothing the console showed stays in the page
  for (const id of ['nodes', 'channels', 'sockets']) $(id).tBodies[0].replaceChildren()
  for (const id of ['users', 'presence', 'history', 'user-channels', 'log']) $(id).replaceChildren()
  for (const id of ['t-nodes', 't-connections', 't-rate', 't-channels']) $(id).textContent = '–'
  $('channel-panel').hidden = true
  $('user-panel').hidden = true
  $('console').hidden = true
  $('who').hidden = true
  $('login-panel').hidden = false
  setStatus('signed-out', 'Signed out')
  showError(message)
}

// --- the feed -------------------------------------------------------------------

function stopFeed () {
  feed?.ctrl.abort()
  feed = null
}

function startFeed () {
  stopFeed()
  const f = { ctrl: new AbortController(), lastEvent: Date.now() }
  feed = f
  runFeed(f)
}

// the feed that is current, and someone signed in: this loop's feed goes on
const current = (f) => feed === f && creds !== null

async function runFeed (f) {
  let delay = 1000
  while (current(f)) {
    if ($('status').dataset.state !== 'live') setStatus('connecting', 'Connecting…')
    try {
      const qs = new URLSearchParams()
      if (focus.channel !== null) qs.set('channel', focus.channel)
      if (focus.user !== null) qs.set('user', focus.user)
      const res = await fetch(`/admin/feed?${qs}`, { headers: authHeaders(), signal: f.ctrl.signal, cache: 'no-store' })
      if (res.status === 401 && await refresh()) continue
      if (res.status === 401 || res.status === 403) {
        const body = await readJson(res)
        signOut(`Signed out: ${body?.message ?? 'credentials refused'}`)
        return
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      f.lastEvent = Date.now()
      delay = 1000
      await readEvents(res.body, f)
      // the server ends a feed when the token it was opened with expires: a fresh token opens the next
      if (creds?.kind === 'token' && (claims(creds.access).exp ?? Infinity) * 1000 - Date.now() < 30_000) await refresh()
    } catch {
      if (f.ctrl.signal.aborted) return
    }
    if (feed !== f) return
    setStatus('offline', 'Reconnecting…')
    await sleep(delay)
    delay = Math.min(delay * 2, 10_000)
  }
}

async function readEvents (body, f) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done || feed !== f) return
    buffer += decoder.decode(value, { stream: true })
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let event = 'message'
      let data = ''
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data += line.slice(6)
      }
      f.lastEvent = Date.now()
      if (data !== '') onEvent(event, JSON.parse(data))
    }
  }
}

// a feed that went quiet without closing is replaced
setInterval(() => {
  if (feed !== null && Date.now() - feed.lastEvent > STALE_MS) {
    setStatus('offline', 'Reconnecting…')
    startFeed()
  }
}, 1000)

function onEvent (event, data) {
  if (event === 'series') {
    points = data.points.map(([t, published, connections]) => [t, published, connections])
  } else if (event === 'snapshot') {
    setStatus('live', 'Live')
    lastSnapshot = data
    const o = data.overview
    const t = Math.round(o.at / 1000)
    if (points.length === 0 || points[points.length - 1][0] < t) points.push([t, o.totals.published, o.totals.connections])
    render(data)
  } else if (event === 'problem') {
    setStatus('degraded', `Live, but: ${data.message}`)
  }
  const now = Date.now() / 1000
  points = points.filter(([t]) => t >= now - WINDOW_S - 5)
  // what there is, up to five minutes: a young cluster's first minute fills the chart
  const windowS = Math.min(WINDOW_S, Math.max(60, now - (points[0]?.[0] ?? now)))
  drawChart($('chart-messages'), points.map(([t, m]) => [t, m]), { now, windowS, kind: 'messages' })
  drawChart($('chart-connections'), points.map(([t, , c]) => [t, c]), { now, windowS, kind: 'connections' })
}

function setFocus (kind, value) {
  if (focus[kind] === value) return
  focus[kind] = value
  render(lastSnapshot)
  // the feed carries the focused channel and user: a new one is opened for them
  if (creds !== null) startFeed()
}

// --- rendering --------------------------------------------------------------------

function text (node, value) {
  const s = String(value)
  if (node.textContent !== s) node.textContent = s
}

function make (tag, cls, content) {
  const node = document.createElement(tag)
  if (cls) node.className = cls
  if (content !== undefined) node.textContent = content
  return node
}

/** Keeps one child per item, by key, in order: rows that stay are updated, not rebuilt (a click on them lands). */
function sync (parent, items, keyOf, create, update) {
  const existing = new Map()
  for (const child of [...parent.children]) existing.set(child.dataset.key, child)
  let prev = null
  for (const item of items) {
    const key = keyOf(item)
    let node = existing.get(key)
    if (node === undefined) {
      node = create(item)
      node.dataset.key = key
    } else {
      existing.delete(key)
    }
    update(node, item)
    const want = prev === null ? parent.firstChild : prev.nextSibling
    if (node !== want) parent.insertBefore(node, want)
    prev = node
  }
  for (const node of existing.values()) node.remove()
}

const num = (n) => Number(n).toLocaleString('en-US')
const rate = (n) => n >= 100 ? num(Math.round(n)) : (Math.round(n * 10) / 10).toFixed(1)
const mib = (b) => `${(b / 1048576).toFixed(0)} MiB`
const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB')

function ago (ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 90) return `${s} s`
  if (s < 90 * 60) return `${Math.round(s / 60)} min`
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`
  return `${Math.round(s / 86400)} d`
}

function cells (tr, n) {
  for (let i = 0; i < n; i++) tr.append(make('td'))
  return tr.cells
}

function render (snap) {
  if (snap === null) return
  const o = snap.overview
  text($('t-nodes'), num(o.totals.nodes))
  text($('t-connections'), num(o.totals.connections))
  text($('t-rate'), rate(o.totals.published))
  text($('t-channels'), num(o.totals.channels))

  sync($('nodes').tBodies[0], o.nodes, n => n.nodeId, () => {
    const tr = make('tr')
    const c = cells(tr, 9)
    for (let i = 1; i < 9; i++) c[i].className = 'num'
    c[0].append(make('code', 'id'), make('span', 'badge'), make('span', 'hint host'))
    return tr
  }, (tr, n) => {
    const c = tr.cells
    const s = n.stats
    text(c[0].children[0], n.nodeId)
    text(c[0].children[1], n.self ? 'this node' : '')
    text(c[0].children[2], s === null ? 'no report (console off there?)' : `${s.host} · pid ${s.pid}`)
    tr.dataset.reporting = String(s !== null)
    const values = s === null
      ? ['–', '–', '–', '–', '–', '–', '–', '–']
      : [num(s.connections), num(s.users), num(s.channels), rate(s.published), rate(s.delivered),
          `${mib(s.memory.rss)} / ${mib(s.memory.heapUsed)}`, `${s.eventLoop.meanMs.toFixed(1)} / ${s.eventLoop.p99Ms.toFixed(1)} ms`, ago(o.at - s.startedAt)]
    for (let i = 0; i < 8; i++) text(c[i + 1], values[i])
    tr.classList.toggle('lagging', s !== null && s.eventLoop.p99Ms > 100)
  })

  text($('channels-count'), o.channels.total > o.channels.list.length ? `${o.channels.list.length} of ${num(o.channels.total)}` : `${num(o.channels.total)}`)
  sync($('channels').tBodies[0], o.channels.list, ch => ch.name, () => {
    const tr = make('tr')
    const c = cells(tr, 4)
    for (let i = 1; i < 4; i++) c[i].className = 'num'
    const open = make('button', 'link')
    open.type = 'button'
    open.addEventListener('click', () => setFocus('channel', tr.dataset.key))
    c[0].append(open)
    return tr
  }, (tr, ch) => {
    const c = tr.cells
    text(c[0].firstChild, ch.name)
    text(c[1], num(ch.connections))
    text(c[2], num(ch.users))
    text(c[3], rate(ch.rate))
    tr.setAttribute('aria-selected', String(focus.channel === ch.name))
  })

  text($('users-note'), o.users.complete ? `${o.users.list.length}` : `${o.users.list.length}, a sample`)
  sync($('users'), o.users.list, u => u.userId, userChip, (li, u) => {
    text(li.firstChild.children[0], u.userId)
    text(li.firstChild.children[1], u.connections)
    li.firstChild.setAttribute('aria-pressed', String(focus.user === u.userId))
  })

  renderChannel(snap.channel)
  renderUser(snap.user)
}

function userChip () {
  const li = make('li')
  const b = make('button', 'chip')
  b.type = 'button'
  b.append(make('span', 'name'), make('span', 'count'))
  b.addEventListener('click', () => setFocus('user', li.dataset.key))
  li.append(b)
  return li
}

function renderChannel (ch) {
  const panel = $('channel-panel')
  panel.hidden = focus.channel === null
  if (focus.channel === null) return
  text($('channel-name'), focus.channel)
  // the feed for this channel has not answered yet
  if (ch === null || ch.name !== focus.channel) {
    text($('channel-facts'), 'Loading…')
    return
  }
  text($('channel-facts'), `${num(ch.connections)} connections · ${num(ch.users)} users · ${rate(ch.rate)} messages/s`)
  sync($('presence'), ch.presence, p => p.userId, userChip, (li, p) => {
    text(li.firstChild.children[0], p.userId)
    text(li.firstChild.children[1], p.connections)
  })
  sync($('history'), ch.history.slice().reverse(), m => m.id, () => {
    const li = make('li')
    const meta = make('div', 'meta')
    meta.append(make('span', 'time'), make('span', 'from'), make('code', 'msg-id'))
    li.append(meta, make('pre', 'data'))
    return li
  }, (li, m) => {
    const [time, from, id] = li.firstChild.children
    text(time, clock(m.ts))
    text(from, m.from ?? 'server')
    text(id, m.id)
    text(li.children[1], m.truncated ? `${m.text}…` : m.text)
  })
  if (ch.history.length === 0) $('history').replaceChildren(make('li', 'hint', 'No messages in history.'))
}

function renderUser (u) {
  const panel = $('user-panel')
  panel.hidden = focus.user === null
  if (focus.user === null) return
  text($('user-name'), focus.user)
  if (u === null || u.userId !== focus.user) {
    text($('user-facts'), 'Loading…')
    return
  }
  panel.dataset.online = String(u.online)
  const listed = u.sockets.length === u.connections ? '' : ` (${u.sockets.length} listed)`
  text($('user-facts'), u.online ? `Online · ${num(u.connections)} connections${listed} · ${u.channels.length} channels` : 'Offline')
  sync($('user-channels'), u.channels, c => c, () => {
    const li = make('li')
    const chip = make('span', 'chip')
    const name = make('button', 'link')
    name.type = 'button'
    name.addEventListener('click', () => setFocus('channel', li.dataset.key))
    const x = make('button', 'x', '✕')
    x.type = 'button'
    x.addEventListener('click', () => unsubscribeUser(focus.user, li.dataset.key))
    chip.append(name, x)
    li.append(chip)
    return li
  }, (li, c) => {
    text(li.firstChild.firstChild, c)
    li.firstChild.lastChild.setAttribute('aria-label', `Unsubscribe ${focus.user} from ${c}`)
  })
  const now = Date.now()
  sync($('sockets').tBodies[0], u.sockets, s => s.connectionId, () => {
    const tr = make('tr')
    const c = cells(tr, 3)
    c[0].append(make('code', 'id'), make('span', 'hint where'))
    c[1].className = 'wrap'
    c[1].append(make('ul', 'chips small'))
    const buttons = make('div', 'row-actions')
    for (const [label, fn, cls] of [['Message…', messageConnection, ''], ['Subscribe…', subscribeConnection, ''], ['Disconnect', disconnectConnection, 'danger']]) {
      const b = make('button', cls, label)
      b.type = 'button'
      b.addEventListener('click', () => fn(tr.dataset.key))
      buttons.append(b)
    }
    c[2].append(buttons)
    return tr
  }, (tr, s) => {
    const c = tr.cells
    text(c[0].firstChild, s.connectionId)
    c[0].firstChild.title = s.connectionId
    text(c[0].lastChild, `node ${s.nodeId} · opened ${clock(s.openedAt)}, ${ago(now - s.openedAt)} ago`)
    sync(c[1].firstChild, s.channels, x => x, () => {
      const li = make('li')
      const chip = make('span', 'chip')
      const x = make('button', 'x', '✕')
      x.type = 'button'
      x.addEventListener('click', () => unsubscribeConnection(tr.dataset.key, li.dataset.key))
      chip.append(make('span', 'name'), x)
      li.append(chip)
      return li
    }, (li, ch) => {
      text(li.firstChild.firstChild, ch)
      li.firstChild.lastChild.setAttribute('aria-label', `Unsubscribe this connection from ${ch}`)
    })
  })
}

// --- actions: each confirmed, each through the server API ------------------------------

const seg = encodeURIComponent

function log (kind, message) {
  const li = make('li', kind)
  li.append(make('span', 'time', clock(Date.now())), make('span', 'what', message))
  $('log').prepend(li)
  while ($('log').children.length > 50) $('log').lastChild.remove()
}

/** Asks for confirmation (and a value when `input` is given); resolves to the value, true, or null when cancelled. */
function confirmAction ({ title, body, input = null, placeholder = '', confirm = 'Confirm', danger = false, validate = () => null }) {
  const dialog = $('confirm')
  text($('confirm-title'), title)
  text($('confirm-text'), body)
  $('confirm-field').hidden = input === null
  text($('confirm-label'), input ?? '')
  const field = $('confirm-input')
  field.value = ''
  field.placeholder = placeholder
  text($('confirm-error'), '')
  const ok = $('confirm-ok')
  text(ok, confirm)
  ok.className = danger ? 'danger' : 'primary'
  return new Promise(resolve => {
    const finish = (value) => {
      ok.removeEventListener('click', onOk)
      $('confirm-cancel').removeEventListener('click', onCancel)
      dialog.removeEventListener('cancel', onCancel)
      if (dialog.open) dialog.close()
      resolve(value)
    }
    const onOk = () => {
      const value = input === null ? true : field.value
      const problem = input === null ? null : validate(value)
      if (problem !== null) {
        text($('confirm-error'), problem)
        return
      }
      finish(value)
    }
    const onCancel = (e) => { e?.preventDefault?.(); finish(null) }
    ok.addEventListener('click', onOk)
    $('confirm-cancel').addEventListener('click', onCancel)
    dialog.addEventListener('cancel', onCancel)
    dialog.showModal()
    if (input !== null) field.focus()
    else $('confirm-cancel').focus()
  })
}

/** JSON when it parses, else the text itself: `hello` sends "hello", `{"a":1}` an object. */
function parseData (raw) {
  const s = raw.trim()
  if (s === '') return { error: 'Write something to send.' }
  try {
    return { data: JSON.parse(s) }
  } catch {
    return { data: s }
  }
}

const dataProblem = (raw) => parseData(raw).error ?? null
const channelProblem = (raw) => CHANNEL_RE.test(raw.trim()) ? null : 'Not a channel name: letters, digits and _ . : @ # , - (at most 128).'

async function run (what, fn) {
  try {
    const result = await fn()
    log('ok', result === undefined ? what : `${what} — ${result}`)
  } catch (err) {
    log('bad', `${what} failed: ${err.message}${err.status ? ` (HTTP ${err.status})` : ''}`)
  }
}

async function publish (channel, raw) {
  const parsed = parseData(raw)
  if (parsed.error) return log('bad', parsed.error)
  const shown = JSON.stringify(parsed.data)
  if (await confirmAction({ title: 'Publish', body: `Publish ${shown.length > 200 ? `${shown.slice(0, 200)}…` : shown} to ${channel}, as the server, to every socket on it?`, confirm: 'Publish' }) === null) return
  await run(`Published to ${channel}`, async () => {
    const { id } = await call('POST', `/api/channels/${seg(channel)}/messages`, { data: parsed.data })
    $('publish-data').value = ''
    return `message ${id}`
  })
}

async function messageUser (userId) {
  const raw = await confirmAction({ title: 'Message user', body: `A direct frame to every socket of ${userId}, on every node.`, input: 'Data (JSON, or plain text)', placeholder: '{"text": "hello"}', confirm: 'Send', validate: dataProblem })
  if (raw === null) return
  await run(`Sent a direct message to ${userId}`, () => call('POST', `/api/users/${seg(userId)}/messages`, { data: parseData(raw).data }).then(() => undefined))
}

async function subscribeUser (userId) {
  const raw = await confirmAction({ title: 'Subscribe user', body: `Every socket of ${userId} joins the channel (subscribed by the server).`, input: 'Channel', placeholder: 'room:lobby', confirm: 'Subscribe', validate: channelProblem })
  if (raw === null) return
  const channel = raw.trim()
  await run(`Subscribed ${userId} to ${channel}`, () => call('POST', `/api/users/${seg(userId)}/channels/${seg(channel)}`).then(() => undefined))
}

async function unsubscribeUser (userId, channel) {
  if (await confirmAction({ title: 'Unsubscribe user', body: `Every socket of ${userId} leaves ${channel}.`, confirm: 'Unsubscribe', danger: true }) === null) return
  await run(`Unsubscribed ${userId} from ${channel}`, () => call('DELETE', `/api/users/${seg(userId)}/channels/${seg(channel)}`).then(() => undefined))
}

async function disconnectUser (userId) {
  if (await confirmAction({ title: 'Disconnect user', body: `Close every socket of ${userId}, on every node, with 4403? Their clients may reconnect.`, confirm: 'Disconnect', danger: true }) === null) return
  await run(`Disconnected ${userId}`, () => call('DELETE', `/api/users/${seg(userId)}/connections`).then(() => undefined))
}

async function messageConnection (id) {
  const raw = await confirmAction({ title: 'Message connection', body: `A direct frame to connection ${id} alone.`, input: 'Data (JSON, or plain text)', placeholder: '{"text": "hello"}', confirm: 'Send', validate: dataProblem })
  if (raw === null) return
  await run(`Sent a direct message to connection ${id}`, () => call('POST', `/api/connections/${seg(id)}/messages`, { data: parseData(raw).data }).then(() => undefined))
}

async function subscribeConnection (id) {
  const raw = await confirmAction({ title: 'Subscribe connection', body: `Connection ${id} joins the channel (subscribed by the server).`, input: 'Channel', placeholder: 'room:lobby', confirm: 'Subscribe', validate: channelProblem })
  if (raw === null) return
  const channel = raw.trim()
  await run(`Subscribed connection ${id} to ${channel}`, () => call('POST', `/api/connections/${seg(id)}/channels/${seg(channel)}`).then(() => undefined))
}

async function unsubscribeConnection (id, channel) {
  if (await confirmAction({ title: 'Unsubscribe connection', body: `Connection ${id} leaves ${channel}.`, confirm: 'Unsubscribe', danger: true }) === null) return
  await run(`Unsubscribed connection ${id} from ${channel}`, () => call('DELETE', `/api/connections/${seg(id)}/channels/${seg(channel)}`).then(() => undefined))
}

async function disconnectConnection (id) {
  if (await confirmAction({ title: 'Disconnect connection', body: `Close connection ${id} with 4403? Its client may reconnect.`, confirm: 'Disconnect', danger: true }) === null) return
  await run(`Disconnected connection ${id}`, () => call('DELETE', `/api/connections/${seg(id)}`).then(() => undefined))
}

// --- wiring -----------------------------------------------------------------------------

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const username = $('username').value.trim()
  const password = $('password').value
  if (username === '' || password === '') return showError('User name and password, please.')
  showError('')
  try {
    await signInWithPassword(username, password)
  } catch (err) {
    showError(err.message)
  }
})

$('key-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const key = $('api-key').value.trim()
  if (key === '') return showError('The API key, please.')
  showError('')
  try {
    await enter({ kind: 'key', key })
  } catch (err) {
    showError(err.message)
  }
})

$('logout').addEventListener('click', () => signOut())

$('channel-open').addEventListener('submit', (e) => {
  e.preventDefault()
  const name = $('channel-name-input').value.trim()
  if (!CHANNEL_RE.test(name)) return log('bad', channelProblem(name))
  setFocus('channel', name)
})

$('user-open').addEventListener('submit', (e) => {
  e.preventDefault()
  const id = $('user-id-input').value.trim()
  if (id !== '') setFocus('user', id)
})

for (const b of document.querySelectorAll('[data-close]')) {
  b.addEventListener('click', () => setFocus(b.dataset.close, null))
}

$('publish-form').addEventListener('submit', (e) => {
  e.preventDefault()
  if (focus.channel !== null) publish(focus.channel, $('publish-data').value)
})

$('user-message').addEventListener('click', () => { if (focus.user !== null) messageUser(focus.user) })
$('user-subscribe').addEventListener('click', () => { if (focus.user !== null) subscribeUser(focus.user) })
$('user-disconnect').addEventListener('click', () => { if (focus.user !== null) disconnectUser(focus.user) })
