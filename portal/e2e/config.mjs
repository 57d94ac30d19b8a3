// The enterprise's configuration pages (its own backend, 独立后台) against the daemon:
// - bound phones: a phone URI the validator refuses shows the API's message next to that
//   phone's field; the admin puts a new phone first and saves, and the Rust side's next
//   call rings the new phone and not the old one;
// - a viewer sees the pages without any control that writes.
import { BASE, check, expectError, login, noErrors, open, run, screenshots, step } from './lib.mjs'

const NEW_PHONE = process.env.SIHAI_NEW_PHONE
check(NEW_PHONE, 'SIHAI_NEW_PHONE is set')

/** Waits for the success message of a write that is in force. */
async function saved(page) {
  await page.locator('.cfg-saved').last().waitFor()
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

  // A viewer reads every page and finds nothing that writes.
  const viewer = await open(browser)
  await login(viewer, 'acme-viewer')
  await viewer.page.goto(`${BASE}/#/e/acme/phones`)
  await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').waitFor()
  check(await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').inputValue() === NEW_PHONE, 'the viewer sees the new phone')
  check(await viewer.page.locator('[data-group=sales] [data-phone="0"] .cfg-target input').isDisabled(), 'read only')
  check(await viewer.page.locator('.cfg-save, .cfg-add, .cfg-remove, .cfg-up').count() === 0, 'no write controls for a viewer')
  await viewer.page.locator('.cfg-readonly').waitFor()
  noErrors(viewer, 'viewer')
})
