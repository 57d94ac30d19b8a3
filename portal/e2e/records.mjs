// The call records, bills and traffic analysis of a billed enterprise whose number
// records (tests/portal_records.rs): before the call the records are empty; the Rust
// side places one answered call and answers the call's facts (id, cost, talk time, the
// length of its WAV on disk); then the call is in the records page with its cost, its
// recording plays in the page with the call's length and seeks, the CSV export holds
// it; the bill page shows its charge and the statement downloads; the analytics page
// counts it today; another enterprise's admin sees none of it and gets 404 for its
// recording.
import { readFileSync } from 'node:fs'
import { BASE, DESKTOP, PHONE, check, expectError, log, login, noErrors, open, run, screenshots, step } from './lib.mjs'

/** The figure `name` of a page's cards, as text. */
async function figure(page, name) {
  return (await page.locator(`[data-figure="${name}"] .value`).innerText()).trim()
}

/** What the page's own session fetches from the API: status and text. */
async function fetchText(page, path) {
  return page.evaluate(async (url) => {
    const response = await fetch(url, { credentials: 'same-origin' })
    return { status: response.status, text: await response.text() }
  }, path)
}

const yuanText = (amount) => `¥${amount}`

/** A shown amount ("-¥1,234.50") as its exact decimal without trailing zeros ("-1234.5"), to compare figures whatever their decimals. */
function exact(text) {
  const plain = text.trim().replace('¥', '').replaceAll(',', '')
  return plain.includes('.') ? plain.replace(/\.?0+$/, '') : plain
}

await run(async (browser) => {
  const admin = await open(browser)
  await login(admin, 'acme-admin')
  const { page } = admin

  // Before the call: no records.
  await page.goto(`${BASE}/#/e/acme/records`)
  await page.locator('.calls').getByText('没有符合条件的通话').waitFor()
  noErrors(admin, 'records before the call')

  const facts = JSON.parse(await step('call'))
  log(`the call: ${JSON.stringify(facts)}`)

  // The call with its cost, from the nav.
  await page.goto(`${BASE}/#/e/acme/dashboard`)
  await page.locator('[data-nav="/e/acme/records"]').click()
  await page.waitForURL(/#\/e\/acme\/records/)
  const row = page.locator('.calls .el-table__row').filter({ hasText: '13800138000' })
  await row.waitFor()
  check(await row.count() === 1, 'one call listed')
  const rowText = await row.innerText()
  check(rowText.includes('已接听'), `answered: ${rowText}`)
  check(rowText.includes('4001234567'), `the number: ${rowText}`)
  check(rowText.includes('13900000001'), `who answered: ${rowText}`)
  check((await row.locator('[data-cell=cost]').innerText()).trim() === yuanText(facts.cost), `the cost ${facts.cost}: ${rowText}`)
  check(rowText.includes('北京'), `the caller's region: ${rowText}`)

  // Its recording plays in the page: the <audio> element loads it, with the call's
  // length, and seeks (the API answers byte ranges).
  await row.locator(`[data-play="${facts.call_id}"]`).click()
  const audio = page.locator(`audio[data-call="${facts.call_id}"]`)
  await audio.waitFor()
  const media = await audio.evaluate(async (element) => {
    if (element.readyState < 1) {
      await new Promise((resolve, reject) => {
        element.addEventListener('loadedmetadata', resolve, { once: true })
        element.addEventListener('error', () => reject(new Error(`audio error ${element.error?.code}`)), { once: true })
      })
    }
    const duration = element.duration
    element.muted = true
    await element.play()
    await new Promise((resolve) => setTimeout(resolve, 600))
    const played = element.currentTime
    element.pause()
    const target = Math.max(0, duration - 1)
    element.currentTime = target
    await new Promise((resolve) => element.addEventListener('seeked', resolve, { once: true }))
    return { duration, played, seekedTo: element.currentTime, target, seekable: element.seekable.length ? element.seekable.end(0) : 0 }
  })
  log(`the recording in the page: ${JSON.stringify(media)}`)
  check(Math.abs(media.duration - facts.wav_seconds) <= 1, `the audio lasts the WAV: ${media.duration} vs ${facts.wav_seconds}`)
  check(Math.abs(media.duration - facts.talk_s) <= 1, `the audio lasts the talk: ${media.duration} vs ${facts.talk_s}`)
  check(media.played > 0, `it played: ${media.played}`)
  check(Math.abs(media.seekedTo - media.target) < 0.5, `it seeks: ${media.seekedTo} vs ${media.target}`)
  check(media.seekable >= media.duration - 0.5, `seekable to the end: ${media.seekable}`)

  // The attempts, in the row's details.
  await row.locator('.el-table__expand-icon').click()
  await page.locator('.details').getByText(/13900000001\S* answered/).waitFor()
  await screenshots(admin, 'records')
  // On a phone each call is a card, with its cost and its recording.
  await page.setViewportSize(PHONE)
  const card = page.locator(`[data-card="${facts.call_id}"]`)
  await card.waitFor()
  check((await card.innerText()).includes(yuanText(facts.cost)), `the card's cost: ${await card.innerText()}`)
  check(!(await page.locator('.calls').isVisible()), 'no table on a phone')
  await page.setViewportSize(DESKTOP)

  // The CSV link carries the filters, and holds the call.
  const csvHref = await page.locator('[data-action=csv]').getAttribute('href')
  check(csvHref === '/api/v1/enterprises/acme/cdrs.csv', `the CSV link: ${csvHref}`)
  const csv = await fetchText(page, csvHref)
  check(csv.status === 200 && csv.text.includes(facts.call_id), `the CSV holds the call: ${csv.status}`)

  // Filters: a missed-calls filter leaves it out, today's days keep it; both in the URL.
  await page.locator('[data-filter=outcome]').click()
  await page.getByRole('option', { name: '无人接听' }).click()
  await page.getByRole('button', { name: '查询' }).click()
  await page.waitForURL(/outcome=no_answer/)
  await page.locator('.calls').getByText('没有符合条件的通话').waitFor()
  const filteredHref = await page.locator('[data-action=csv]').getAttribute('href')
  check(filteredHref.includes('outcome=no_answer'), `the CSV follows the filters: ${filteredHref}`)
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
  await page.goto(`${BASE}/#/e/acme/records?from=${today}&to=${today}&caller=13800138000`)
  await row.waitFor()
  noErrors(admin, 'records')

  // The bill of the month: the call's charge, and the statement downloads.
  await page.locator('[data-nav="/e/acme/bills"]').click()
  await page.waitForURL(/#\/e\/acme\/bills/)
  await page.locator('[data-figure=calls] .value').getByText('1', { exact: true }).waitFor()
  check(await figure(page, 'calls-cost') === yuanText(facts.cost), `the month's call charges: ${await figure(page, 'calls-cost')}`)
  check(exact(await figure(page, 'opening')) === '0', `opening: ${await figure(page, 'opening')}`)
  check(exact(await page.locator('[data-total=call_charge]').innerText()) === exact(`-${facts.cost}`), 'the call charges total')
  check(exact(await page.locator('[data-total=recharge]').innerText()) === '10', 'the recharge total')
  const ledgerText = await page.locator('.ledger').innerText()
  check(ledgerText.includes(facts.call_id) && ledgerText.includes('bank-1'), `the ledger: ${ledgerText}`)
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-action=statement]').click()])
  const month = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date()).slice(0, 7)
  check(download.suggestedFilename() === `statement-acme-${month}.txt`, `the file's name: ${download.suggestedFilename()}`)
  const statement = readFileSync(await download.path(), 'utf8')
  check(statement.startsWith('话费详单 Statement') && statement.includes('Acme (acme)') && statement.includes('Calls (1, '), `the statement: ${statement}`)
  check(statement.includes('13800138000'), `the statement lists the call: ${statement}`)
  await screenshots(admin, 'bills')
  noErrors(admin, 'bills')

  // The traffic analysis: the call in today's figures (the last 7 days by default, and
  // today alone), the caller's province, the phone that answered.
  await page.locator('[data-nav="/e/acme/analytics"]').click()
  await page.waitForURL(/#\/e\/acme\/analytics/)
  await page.locator('[data-figure=calls] .value').getByText('1', { exact: true }).waitFor()
  await page.goto(`${BASE}/#/e/acme/analytics?from=${today}&to=${today}`)
  await page.getByText(`${today} 至 ${today}`).waitFor()
  for (const [name, value] of [['calls', '1'], ['answered', '1'], ['missed', '0'], ['refused', '0'], ['answer-rate', '100.0%'], ['new-callers', '1'], ['cost', yuanText(facts.cost)]]) {
    check(await figure(page, name) === value, `analytics ${name}: ${await figure(page, name)}, expected ${value}`)
  }
  const provinces = await page.locator('[data-table=provinces] .el-table__row').allInnerTexts()
  check(provinces.length === 1 && provinces[0].includes('北京') && provinces[0].includes('1'), `provinces: ${provinces}`)
  const phones = await page.locator('[data-table=phones] .el-table__row').allInnerTexts()
  check(phones.length === 1 && phones[0].includes('13900000001') && phones[0].includes('100.0%'), `phones: ${phones}`)
  for (const chart of ['daily', 'heatmap', 'map']) {
    await page.locator(`[data-chart=${chart}] canvas`).first().waitFor()
  }
  await screenshots(admin, 'analytics')
  // In English.
  await page.locator('.language').click()
  await page.getByRole('option', { name: 'English' }).click()
  await page.getByRole('heading', { name: 'Traffic analysis' }).waitFor()
  await page.locator('[data-nav="/e/acme/records"]').click()
  await page.getByRole('heading', { name: 'Call records' }).waitFor()
  await screenshots(admin, 'records-en')
  noErrors(admin, 'analytics')

  // Another enterprise's admin: none of it, and the recording is not found.
  const other = await open(browser)
  await login(other, 'beta-admin')
  await other.page.goto(`${BASE}/#/e/beta/records`)
  await other.page.locator('.calls').getByText('没有符合条件的通话').waitFor()
  check(!(await other.page.locator('.calls').innerText()).includes('13800138000'), 'beta sees no call of acme')
  await screenshots(other, 'records-empty')
  await other.page.locator('[data-nav="/e/beta/analytics"]').click()
  await other.page.locator('[data-figure=calls] .value').getByText('0', { exact: true }).waitFor()
  check(exact(await figure(other.page, 'cost')) === '0', 'beta costs nothing')
  check((await other.page.locator('[data-table=provinces] .el-table__row').count()) === 0, 'beta has no callers')
  await other.page.locator('[data-nav="/e/beta/bills"]').click()
  await other.page.locator('[data-state=not-billed]').waitFor()
  await other.page.goto(`${BASE}/#/e/acme/records`)
  await other.page.waitForURL(/#\/e\/beta\/dashboard/)
  expectError(other, /status of 404/)
  const stolen = await fetchText(other.page, `/api/v1/enterprises/acme/cdrs/${encodeURIComponent(facts.call_id)}/recording`)
  check(stolen.status === 404, `acme's recording for beta: ${stolen.status}`)
  expectError(other, /status of 404/)
  const stolenCsv = await fetchText(other.page, '/api/v1/enterprises/acme/cdrs.csv')
  check(stolenCsv.status === 404, `acme's CSV for beta: ${stolenCsv.status}`)
  await other.page.waitForTimeout(200)
  noErrors(other, 'another enterprise')
})
