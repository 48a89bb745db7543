// docs/protocol.md is written by hand, so it drifts the moment a frame, a code or a
// setting changes in code without it (or the doc promises something the code lacks).
// This compares both ways, without a server.
//
// How the doc is read: it is cut into sections at its `## ` headings, found by their
// exact text. In the two frame sections every `### ` heading is one frame, written as
// its `type` in backticks, and the table under it lists that frame's fields (first
// cell the field in backticks, third cell `yes` or `no` for required). In the close
// code, error code and configuration sections, the first cell of every table row is
// one documented name in backticks; a section may hold several tables (the
// configuration is grouped). Header and separator rows are skipped. A row whose first
// cell is not one backticked name fails the test rather than being skipped, so a
// malformed row cannot hide an undocumented item.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { ClientFrameSchema, CloseCodes, ERROR_CODES, ServerFrameSchema } from '../../src/protocol/frames.ts'
import { EnvSchema } from '../../src/config/config.ts'

const DOC = new URL('../../docs/protocol.md', import.meta.url)

const SECTIONS = {
  client: 'Frames: client → server',
  server: 'Frames: server → client',
  close: 'Close codes',
  errors: 'Error frame codes',
  config: 'Configuration'
} as const

interface Row { cells: string[], line: string }

/** Level-2 sections by heading text; code fences are skipped so a `#` inside one is not a heading. */
function sections (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | null = null
  let fenced = false
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    if (!fenced && line.startsWith('## ')) {
      current = []
      out.set(line.slice(3).trim(), current)
    } else if (current !== null) {
      current.push(line)
    }
  }
  return out
}

/** Body rows of every table in `lines` (a table's first row is its header, its second the separator). */
function tableRows (lines: string[]): Row[] {
  const rows: Row[] = []
  let inTable = false
  for (const raw of lines) {
    const line = raw.trim()
    if (!line.startsWith('|')) {
      inTable = false
      continue
    }
    const cells = line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map(c => c.trim())
    if (!inTable) {
      inTable = true
      continue
    }
    if (cells.every(c => /^:?-+:?$/.test(c))) continue
    rows.push({ cells, line })
  }
  return rows
}

const NAME = /^`([^`]+)`$/

function nameOf (t: Test, row: Row): string | null {
  const m = NAME.exec(row.cells[0])
  if (m === null) t.fail(`first cell is not one name in backticks: ${row.line}`)
  return m?.[1] ?? null
}

function names (t: Test, lines: string[]): string[] {
  return tableRows(lines).map(row => nameOf(t, row)).filter((n): n is string => n !== null)
}

/** Each `### `type`` heading and the field rows of the table under it. */
function frames (t: Test, lines: string[]): Map<string, Row[]> {
  const out = new Map<string, Row[]>()
  let body: string[] | null = null
  let type = ''
  const flush = (): void => {
    if (body === null) return
    if (out.has(type)) t.fail(`frame \`${type}\` documented twice`)
    out.set(type, tableRows(body))
  }
  for (const line of lines) {
    if (line.startsWith('### ')) {
      flush()
      const m = NAME.exec(line.slice(4).trim())
      if (m === null) t.fail(`frame heading is not a type in backticks: ${line}`)
      type = m?.[1] ?? line
      body = []
    } else if (body !== null) {
      body.push(line)
    }
  }
  flush()
  return out
}

/** Same set, and the difference spelled out so a failure says what to document or remove. */
function sameSet (t: Test, documented: readonly string[], inCode: readonly string[], what: string): void {
  const doc = new Set(documented)
  const code = new Set(inCode)
  t.equal(doc.size, documented.length, `${what}: no name documented twice`)
  t.same([...code].filter(n => !doc.has(n)).sort(), [], `${what}: in the code but not in docs/protocol.md`)
  t.same([...doc].filter(n => !code.has(n)).sort(), [], `${what}: in docs/protocol.md but not in the code`)
}

interface ObjectSchema { properties: Record<string, { const?: unknown }>, required?: string[] }

function byType (union: { anyOf: readonly unknown[] }): Map<string, ObjectSchema> {
  const out = new Map<string, ObjectSchema>()
  for (const member of union.anyOf as ObjectSchema[]) out.set(String(member.properties.type.const), member)
  return out
}

const doc = sections(readFileSync(DOC, 'utf8'))

function section (t: Test, heading: string): string[] {
  const lines = doc.get(heading)
  if (lines === undefined) t.fail(`docs/protocol.md has no "## ${heading}" section`)
  return lines ?? []
}

for (const [direction, union] of [['client', ClientFrameSchema], ['server', ServerFrameSchema]] as const) {
  t.test(`every ${direction} → frame and its fields are documented, and nothing else`, async t => {
    const heading = SECTIONS[direction]
    const documented = frames(t, section(t, heading))
    const schemas = byType(union)
    sameSet(t, [...documented.keys()], [...schemas.keys()], `${heading}: frame types`)
    for (const [type, rows] of documented) {
      const schema = schemas.get(type)
      if (schema === undefined) continue
      const fields = rows.map(row => nameOf(t, row)).filter((n): n is string => n !== null)
      sameSet(t, fields, Object.keys(schema.properties), `\`${type}\` fields`)
      const required = new Set(schema.required ?? [])
      for (const row of rows) {
        const field = NAME.exec(row.cells[0])?.[1]
        if (field === undefined || !(field in schema.properties)) continue
        t.equal(row.cells[2], required.has(field) ? 'yes' : 'no', `\`${type}\`.${field}: the "required" column matches the schema`)
      }
    }
  })
}

t.test('the close codes are CloseCodes, by value and by name', async t => {
  const rows = tableRows(section(t, SECTIONS.close))
  const documented = rows.map(row => nameOf(t, row)).filter((n): n is string => n !== null)
  sameSet(t, documented, Object.values(CloseCodes).map(String), 'close codes')
  const nameByCode = new Map(Object.entries(CloseCodes).map(([name, code]) => [String(code), name]))
  for (const row of rows) {
    const code = NAME.exec(row.cells[0])?.[1]
    const name = code === undefined ? undefined : nameByCode.get(code)
    if (name !== undefined) t.equal(row.cells[1], `\`${name}\``, `close code ${code} is CloseCodes.${name}`)
  }
})

t.test('the error frame codes are ERROR_CODES', async t => {
  sameSet(t, names(t, section(t, SECTIONS.errors)), ERROR_CODES, 'error frame codes')
})

t.test('the configuration names are the EnvSchema keys', async t => {
  sameSet(t, names(t, section(t, SECTIONS.config)), Object.keys(EnvSchema.properties), 'configuration')
})
