// examples/php-backend/index.php end to end: PHP's built-in server runs it as a
// router script, a real Gatecast calls it on socket events and it calls that
// Gatecast back through the server API (see backend-scenario.ts for what is checked).
// Needs Debian's php-cli; without it the test says so and skips, except when
// REQUIRE_PHP=1 or CI=true, where a missing php is a failure.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { backendScenario, spawnUntil, type StartBackend } from '../helpers/backend-scenario.ts'

const SCRIPT = fileURLToPath(new URL('../../examples/php-backend/index.php', import.meta.url))

const startPhp: StartBackend = async (port, env) => {
  const { child, output, stop } = await spawnUntil('php', ['-S', `127.0.0.1:${port}`, SCRIPT], env, /Development Server \(http:\/\/127\.0\.0\.1:\d+\) started/)
  return { url: `http://127.0.0.1:${port}`, child, output, stop }
}

/** PHP's own complaints, which the built-in server prints on stderr. */
function clean (t: Test, output: string): void {
  t.notMatch(output, /PHP (Warning|Notice|Deprecated|Fatal error|Parse error)|Uncaught/, 'PHP printed no warning or error')
}

const php = spawnSync('php', ['--version'], { encoding: 'utf8' })
const missing = php.error !== undefined || php.status !== 0 ? 'php-cli not installed: apt-get install php-cli' : null
const required = process.env.CI === 'true' || process.env.REQUIRE_PHP === '1'

if (missing !== null) {
  if (required) t.fail(`${missing} (required: CI=true or REQUIRE_PHP=1)`)
  else t.plan(0, missing)
} else {
  t.comment(php.stdout.split('\n')[0])
  backendScenario(t, startPhp, clean)

  t.test('without BACKEND_SECRET every call is refused: 500, nothing done', async t => {
    const { output, stop } = await spawnUntil('php', ['-S', '127.0.0.1:0', SCRIPT], {}, /Development Server \(http:\/\/127\.0\.0\.1:(\d+)\) started/)
    t.teardown(stop)
    const port = /127\.0\.0\.1:(\d+)\) started/.exec(output())?.[1]
    const res = await fetch(`http://127.0.0.1:${port}/connect`, { method: 'POST', body: '{"userId":"alice"}', headers: { 'x-gatecast-signature': 'sha256=' } })
    t.equal(res.status, 500)
    t.match(await res.json(), { error: 'not_configured' })
  })
}
