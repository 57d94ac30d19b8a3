// The enterprise's configuration pages (its own backend, 独立后台) against the daemon:
// - bound phones: a phone URI the validator refuses shows the API's message next to that
//   phone's field; the admin puts a new phone first and saves, and the Rust side's next
//   call rings the new phone and not the old one;
// - business hours: a day picked on the calendar is made a holiday and saved (read back
//   through the API);
// - black and white lists: an entry the validator refuses is marked with the API's
//   message at the list; without it the list is saved;
// - voice menu: the configured menu drawn as a tree (keys, submenu, defaults); a key
//   added to the submenu and an extension added are saved;
// - prompts: a WAV made here is uploaded as a new prompt and the page's <audio> loads it
//   back from the API; a file that is no recording is refused with the API's reason at
//   the field;
// - a viewer sees every page without any control that writes.
import { BASE, check, expectError, login, noErrors, open, run, screenshots, step } from './lib.mjs'

const NEW_PHONE = process.env.SIHAI_NEW_PHONE
check(NEW_PHONE, 'SIHAI_NEW_PHONE is set')

/** Waits for the success message of a write that is in force, then for it to go. */
async function saved(page) {
  await page.locator('.cfg-saved').last().waitFor()
  await page.locator('.cfg-saved').first().waitFor({ state: 'detached', timeout: 10000 })
}

/** An entry of the enterprise's data, read through the API with the page's session. */
async function entry(page, path) {
  return page.evaluate(async (p) => (await fetch(`/api/v1/enterprises/acme/${p}`)).json(), path)
}

/** A 0.6 s 440 Hz tone: an 8 kHz mono 16-bit WAV file. */
function toneWav() {
  const rate = 8000
  const samples = rate * 0.6
  const buffer = Buffer.alloc(44 + samples * 2)
  buffer.write('RIFF', 0)
  buffer.writeUInt32LE(36 + samples * 2, 4)
  buffer.write('WAVEfmt ', 8)
  buffer.writeUInt32LE(16, 16)
  buffer.writeUInt16LE(1, 20)
  buffer.writeUInt16LE(1, 22)
  buffer.writeUInt32LE(rate, 24)
  buffer.writeUInt32LE(rate * 2, 28)
  buffer.writeUInt16LE(2, 32)
  buffer.writeUInt16LE(16, 34)
  buffer.write('data', 36)
  buffer.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) buffer.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2)
  return buffer
}

/** Picks `label` in the Element Plus select `select` (its dropdown is in the page's body). */
async function choose(page, select, label) {
  await select.click()
  await page.locator('.el-select-dropdown__item:visible', { hasText: label }).first().click()
}

await run(async (browser) => {
  const admin = await open(browser)
  await login(admin, 'acme-admin')
  const { page } = admin

  // Bound phones.
  await page.goto(`${BASE}/#/e/acme/phones`)
  const sales = page.locator('[data-group=sales]')
  const first = sales.locator('[data-phone="0"]')
  await first.locator('.cfg-target input').waitFor()
  check((await first.locator('.cfg-target input').inputValue()).startsWith('sip:'), 'the first phone is the old URI')
  await screenshots(admin, 'phones')

  // A URI the validator refuses: its message at that phone's field, nothing saved.
  await first.locator('.cfg-target input').fill('sip:bad uri')
  expectError(admin, /status of 422/)
  await sales.locator('.cfg-save').click()
  const fieldError = first.locator('.cfg-target .el-form-item__error')
  await fieldError.waitFor()
  const message = await fieldError.innerText()
  check(message.includes('invalid phone URI') && message.includes('sip:bad uri'), `the API's message at the field: ${message}`)
  noErrors(admin, 'a refused phone')

  // The new phone in place of the old one; another added and moved up; the last disabled.
  await first.locator('.cfg-target input').fill(NEW_PHONE)
  await sales.locator('.cfg-add').click()
  const added = sales.locator('[data-phone="2"]')
  await added.locator('.cfg-target input').fill('13900000007')
  await added.locator('.cfg-timeout input').fill('15')
  await added.locator('.cfg-up').click()
  await sales.locator('[data-phone="1"] .cfg-target input').waitFor()
  check(await sales.locator('[data-phone="1"] .cfg-target input').inputValue() === '13900000007', 'moved up')
  await sales.locator('[data-phone="2"] .cfg-enabled .el-switch').click()
  await sales.locator('.cfg-save').click()
  await saved(page)
  check(!(await fieldError.isVisible()), 'no error left')
  noErrors(admin, 'the new phone saved')
  await step('call the number')

  // Business hours: the 20th of this month made a holiday on the calendar, and saved.
  await page.locator('[data-nav="/e/acme/schedules"]').click()
  const hours = page.locator('[data-schedule=acme-hours]')
  await hours.locator('.cfg-calendar').waitFor()
  await screenshots(admin, 'schedules')
  const month = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit' }).format(new Date())
  const holiday = `${month}-20`
  await hours.locator(`[data-date="${holiday}"]`).click()
  await hours.locator('.cfg-selected', { hasText: holiday }).waitFor()
  await hours.locator('.cfg-set-holiday').click()
  await hours.locator(`[data-date="${holiday}"].cfg-holiday`).waitFor()
  await hours.locator('.cfg-holidays .el-tag', { hasText: holiday }).waitFor()
  await hours.locator('.cfg-save').click()
  await saved(page)
  const schedule = await entry(page, 'schedules/acme-hours')
  check(schedule.data.holidays.includes(holiday) && schedule.data.holidays.includes('2026-10-01'), `the holiday is saved: ${JSON.stringify(schedule.data)}`)
  await hours.locator(`[data-date="${holiday}"].cfg-holiday`).waitFor()
  noErrors(admin, 'business hours')

  // Black and white lists: a bad entry refused at the list, then the list saved without it.
  await page.locator('[data-nav="/e/acme/lists"]').click()
  const plan = page.locator('[data-plan=main]')
  await plan.locator('.cfg-blacklist .cfg-item', { hasText: '170*' }).waitFor()
  await screenshots(admin, 'lists')
  await plan.locator('input[name=add-blacklist]').fill('13812345678, 1381234x')
  await plan.locator('.cfg-blacklist .cfg-add').click()
  expectError(admin, /status of 422/)
  await plan.locator('.cfg-save').click()
  const listError = plan.locator('.cfg-blacklist .el-form-item__error')
  await listError.waitFor()
  const listMessage = await listError.innerText()
  check(listMessage.includes('invalid blacklist entry "1381234x"'), `the API's message at the list: ${listMessage}`)
  await plan.locator('.cfg-blacklist .cfg-item.el-tag--danger', { hasText: '1381234x' }).waitFor()
  noErrors(admin, 'a refused blacklist entry')
  await plan.locator('.cfg-blacklist .cfg-item', { hasText: '1381234x' }).locator('.el-tag__close').click()
  await plan.locator('.cfg-save').click()
  await saved(page)
  const main = await entry(page, 'plans/main')
  check(JSON.stringify(main.data.blacklist) === JSON.stringify(['13900000000', '170*', '13812345678']), `the blacklist is saved: ${JSON.stringify(main.data)}`)
  noErrors(admin, 'blacklist')

  // The voice menu as a tree, a key added to its submenu; an extension added.
  await page.locator('[data-nav="/e/acme/menus"]').click()
  const menu = page.locator('[data-menu=acme-menu]')
  const tree = menu.locator('.cfg-tree')
  await tree.locator('[data-node=main]').waitFor()
  for (const key of ['main:1', 'main:2', 'main:0', 'main:#', 'service:1', 'service:*']) await tree.locator(`[data-key="${key}"]`).waitFor()
  check((await tree.locator('[data-key="main:2"]').innerText()).includes('service'), 'key 2 leads to the service menu')
  check(await tree.locator('[data-node=service]').count() === 1, 'the submenu hangs under its key')
  check((await tree.locator('[data-key="service:1"]').innerText()).includes('repairs'), 'the submenu rings repairs on 1')
  await screenshots(admin, 'menus')
  await tree.locator('[data-node=service]').click()
  await menu.locator('[data-editing=service]').waitFor()
  await menu.locator('.cfg-option-add').click()
  await menu.locator('[data-editing=service] [data-option="2"]').waitFor()
  await tree.locator('[data-key="service:2"]').waitFor()
  await menu.locator('.cfg-save').click()
  await saved(page)
  const savedMenu = await entry(page, 'menus/acme-menu')
  const service = savedMenu.data.node.find((n) => n.name === 'service')
  check(service.options['2']?.group === 'sales', `the new key is saved: ${JSON.stringify(service)}`)
  await page.locator('.cfg-extension-add').click()
  const fresh = page.locator('.cfg-extension').last()
  await fresh.locator('input[name=extension-number]').fill('8003')
  await choose(page, fresh.locator('.el-select').first(), 'sales')
  await fresh.locator('.cfg-extension-save').click()
  await saved(page)
  await page.locator('[data-extension="8003"]').waitFor()
  noErrors(admin, 'voice menu and extensions')

  // Prompts: a WAV uploaded and played back; a file that is no recording refused.
  await page.locator('[data-nav="/e/acme/prompts"]').click()
  await page.locator('input[name=prompt-name]').fill('acme-hold')
  await page.locator('input[name=prompt-file]').setInputFiles({ name: 'hold.wav', mimeType: 'audio/wav', buffer: toneWav() })
  await page.locator('.cfg-upload').click()
  await saved(page)
  const uploaded = page.locator('[data-prompt=acme-hold]')
  await uploaded.locator('audio').waitFor()
  await page.waitForFunction(() => {
    const audio = document.querySelector('[data-prompt=acme-hold] audio')
    return audio && audio.readyState >= 1 && audio.duration > 0.5 && audio.duration < 0.7
  })
  await uploaded.locator('.cfg-duration').waitFor()
  await screenshots(admin, 'prompts')
  expectError(admin, /status of 422/)
  await uploaded.locator('.cfg-file').setInputFiles({ name: 'notes.wav', mimeType: 'audio/wav', buffer: Buffer.from('this is not a recording') })
  const audioError = uploaded.locator('.el-form-item__error')
  await audioError.waitFor()
  check((await audioError.innerText()).length > 10, `the API's reason at the field: ${await audioError.innerText()}`)
  noErrors(admin, 'prompts')

  // A viewer reads every page and finds nothing that writes.
  const viewer = await open(browser)
  await login(viewer, 'acme-viewer')
  await viewer.page.goto(`${BASE}/#/e/acme/phones`)
  await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').waitFor()
  check(await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').inputValue() === NEW_PHONE, 'the viewer sees the new phone')
  check(await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').isDisabled(), 'read only')
  check(await viewer.page.locator('.cfg-save, .cfg-add, .cfg-remove, .cfg-up').count() === 0, 'no write controls for a viewer')
  await viewer.page.locator('.cfg-readonly').waitFor()
  const writes = '.cfg-save, .cfg-add, .cfg-remove, .cfg-up, .cfg-down, .cfg-reset, .cfg-delete, .cfg-set-holiday, .cfg-range-add, ' +
    '.cfg-plan-save, .cfg-option-add, .cfg-extension-add, .cfg-extension-save, .cfg-extension-remove, .cfg-upload, .cfg-file, .cfg-prompt-remove, .el-tag__close'
  for (const [path, ready] of [['schedules', '[data-schedule=acme-hours] .cfg-calendar'], ['lists', '[data-plan=main] .cfg-item'],
    ['menus', '.cfg-tree [data-node=service]'], ['prompts', '[data-prompt=acme-hold] audio']]) {
    await viewer.page.locator(`[data-nav="/e/acme/${path}"]`).click()
    await viewer.page.locator(ready).first().waitFor()
    await viewer.page.locator('.cfg-readonly').waitFor()
    check(await viewer.page.locator(writes).count() === 0, `no write controls for a viewer on ${path}`)
  }
  check(await viewer.page.locator(writes).count() === 0, 'no write controls for a viewer')
  noErrors(viewer, 'viewer')
})
