// Line charts of the last minutes, drawn as SVG from the page's own points:
// no library, nothing but elements and attributes (the page's CSP allows no
// inline style). Colours come from the stylesheet's classes.
/* global document */

const NS = 'http://www.w3.org/2000/svg'
const W = 600
const H = 150
// room for the axis labels
const TOP = 16
const BOTTOM = 18

function el (name, attrs = {}, text) {
  const node = document.createElementNS(NS, name)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

/** A round upper bound for the axis: 1, 2, 5 × 10ⁿ */
function niceMax (v) {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}

const label = (v) => v >= 1000 ? `${Math.round(v / 100) / 10}k` : String(Math.round(v * 10) / 10)

/**
 * Draws `points` ([time in s, value], oldest first) over the `windowS` seconds
 * up to `now` (s) into `svg`, replacing what was there.
 */
export function drawChart (svg, points, { now, windowS, kind }) {
  svg.replaceChildren()
  const from = now - windowS
  const shown = points.filter(([t]) => t >= from - 1)
  const max = niceMax(Math.max(0, ...shown.map(([, v]) => v)))
  const x = (t) => Math.max(0, Math.min(W, ((t - from) / windowS) * W))
  const y = (v) => TOP + (H - TOP - BOTTOM) * (1 - v / max)

  for (const f of [0, 0.5, 1]) {
    svg.append(el('line', { x1: 0, x2: W, y1: y(max * f), y2: y(max * f), class: 'grid-line' }))
  }
  svg.append(el('text', { x: 4, y: TOP - 4, class: 'axis' }, label(max)))
  svg.append(el('text', { x: 4, y: H - 4, class: 'axis' }, windowS < 120 ? `−${Math.round(windowS)} s` : `−${Math.round(windowS / 60)} min`))
  svg.append(el('text', { x: W - 4, y: H - 4, class: 'axis end' }, 'now'))

  if (shown.length === 0) {
    svg.append(el('text', { x: W / 2, y: H / 2, class: 'axis middle' }, 'waiting for data…'))
    return
  }
  const line = shown.map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
  const first = x(shown[0][0]).toFixed(1)
  const last = x(shown[shown.length - 1][0]).toFixed(1)
  svg.append(el('path', { d: `${line} L${last},${y(0)} L${first},${y(0)} Z`, class: `area ${kind}` }))
  svg.append(el('path', { d: line, class: `line ${kind}` }))
  const [, current] = shown[shown.length - 1]
  svg.append(el('text', { x: W - 4, y: TOP - 4, class: `axis end current ${kind}` }, label(current)))
}
