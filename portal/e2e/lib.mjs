// What every browser test of the portal shares. A test is a Node script run by a Rust
// integration test (tests/portal*.rs) against the built daemon: the Rust side starts the
// daemon, its users and its SIP peers; the script drives Debian's Chromium headless
// through playwright-core. When the script needs something done on the SIP side (a call
// placed), it prints `STEP <name>` and waits for one line on its standard input.
//
// Every page is watched: a console error or an uncaught exception fails the test, unless
// the test says it expects that one (a refused write's 422, an ended session's 401).
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const BASE = process.env.SIHAI_URL ?? 'http://127.0.0.1:8080'
const SHOTS = process.env.SIHAI_SCREENSHOTS ?? null
export const DESKTOP = { width: 1366, height: 900 }
export const PHONE = { width: 390, height: 844 }

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

/** Tells the Rust side `name` and waits until it answers (one line; its text is returned). */
export async function step(name) {
  process.stdout.write(`STEP ${name}\n`)
  const next = await lines.next()
  if (next.done) throw new Error(`the test runner went away at step ${name}`)
  return next.value.trim()
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

export function log(message) {
  process.stdout.write(`LOG ${message}\n`)
}

const opened = []

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // Root in a container, and a machine with no way out: no sandbox, nothing that phones home.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  })
}

/** A new browser context (its own cookies) and page, watched for errors. */
export async function open(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' })
  const page = await context.newPage()
  const watched = { context, page, errors: [], expected: [] }
  page.on('console', (message) => {
    if (message.type() === 'error') watched.errors.push(`console: ${message.text()}`)
  })
  page.on('pageerror', (error) => watched.errors.push(`exception: ${error.message}`))
  page.setDefaultTimeout(15000)
  opened.push(watched)
  return watched
}

/** Allows the next console errors matching `pattern` (each allowance is used once). */
export function expectError(watched, pattern) {
  watched.expected.push(pattern)
}

/** Fails if the page logged an error that was not expected. */
export function noErrors(watched, where) {
  const unexpected = []
  for (const error of watched.errors) {
    const i = watched.expected.findIndex((p) => p.test(error))
    if (i >= 0) watched.expected.splice(i, 1)
    else unexpected.push(error)
  }
  watched.errors = []
  if (unexpected.length) throw new Error(`errors on the page at ${where}:\n${unexpected.join('\n')}`)
}

/** The page at desktop width and at phone width, saved as <name>-desktop.png and <name>-phone.png. */
export async function screenshots(watched, name) {
  if (!SHOTS) return
  mkdirSync(SHOTS, { recursive: true })
  const { page } = watched
  const before = page.viewportSize()
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size)
    await page.waitForTimeout(300)
    await page.screenshot({ path: join(SHOTS, `${name}-${label}.png`), fullPage: true })
  }
  if (before) await page.setViewportSize(before)
  noErrors(watched, `screenshots of ${name}`)
}

export async function login(watched, name, password = `${name}-secret-pw`) {
  const { page } = watched
  await page.goto(`${BASE}/#/login`)
  await page.locator('input[name=login]').fill(name)
  await page.locator('input[name=password]').fill(password)
  await page.locator('button[type=submit]').click()
  await page.waitForURL((url) => !url.hash.startsWith('#/login'))
}

/** Runs a test body; prints PASS or the failure, and exits with its status. */
export async function run(body) {
  let browser
  try {
    browser = await launch()
    await body(browser)
    process.stdout.write('PASS\n')
    await browser.close()
    process.exit(0)
  } catch (error) {
    process.stdout.write(`FAIL ${String(error.stack ?? error).replaceAll('\n', '\nFAIL ')}\n`)
    for (const [i, watched] of opened.entries()) {
      process.stdout.write(`FAIL page ${i}: ${watched.page.url()}; errors: ${watched.errors.join(' | ')}\n`)
      if (SHOTS) {
        mkdirSync(SHOTS, { recursive: true })
        await watched.page.screenshot({ path: join(SHOTS, `failure-page-${i}.png`), fullPage: true }).catch(() => {})
      }
    }
    if (browser) await browser.close().catch(() => {})
    process.exit(1)
  }
}
