// Logging in and out of the portal, and the session ending under the page: a wrong
// password is refused at the form; the operator sees every enterprise and opens one's
// backend; an enterprise admin lands on its own dashboard and cannot reach another
// enterprise's pages nor the operator's; when its session is revoked (its password reset
// by the operator) the next action returns to the login, which says why; the language
// switch turns the page English.
import { BASE, check, expectError, login, noErrors, open, run, screenshots, step } from './lib.mjs'

await run(async (browser) => {
  // A wrong password: the API's refusal next to the form, no navigation.
  const stranger = await open(browser)
  await stranger.page.goto(`${BASE}/`)
  await stranger.page.waitForURL(/#\/login/)
  await screenshots(stranger, 'login')
  await stranger.page.locator('input[name=login]').fill('op')
  await stranger.page.locator('input[name=password]').fill('not-the-password')
  expectError(stranger, /status of 401/)
  await stranger.page.locator('button[type=submit]').click()
  await stranger.page.getByRole('alert').waitFor()
  const refusal = await stranger.page.getByRole('alert').innerText()
  check(refusal.includes('not logged in'), `the API's refusal is shown: ${refusal}`)
  check(stranger.page.url().includes('#/login'), 'still on the login page')
  noErrors(stranger, 'wrong password')

  // The operator: every enterprise, and one's backend.
  const operator = await open(browser)
  await login(operator, 'op')
  await operator.page.waitForURL(/#\/op\/node/)
  await operator.page.locator('[data-nav="/op/enterprises"]').click()
  await operator.page.waitForURL(/#\/op\/enterprises/)
  const table = operator.page.locator('.el-table')
  await table.getByText('acme', { exact: true }).waitFor()
  await table.getByText('beta', { exact: true }).waitFor()
  await operator.page.locator('a[href="#/e/acme/dashboard"]').click()
  await operator.page.waitForURL(/#\/e\/acme\/dashboard/)
  await operator.page.locator('[data-figure=calls-today] .value').getByText('0').waitFor()
  noErrors(operator, 'operator')

  // An enterprise admin: its dashboard only.
  const admin = await open(browser)
  await login(admin, 'beta-admin')
  await admin.page.waitForURL(/#\/e\/beta\/dashboard/)
  await admin.page.locator('[data-figure=calls-today]').waitFor()
  await screenshots(admin, 'dashboard')
  await admin.page.goto(`${BASE}/#/e/acme/dashboard`)
  await admin.page.waitForURL(/#\/e\/beta\/dashboard/)
  await admin.page.goto(`${BASE}/#/op/enterprises`)
  await admin.page.waitForURL(/#\/e\/beta\/dashboard/)
  // A reload keeps the session (the page asks the API who it is).
  await admin.page.reload()
  await admin.page.locator('[data-figure=calls-today]').waitFor()
  check(admin.page.url().includes('#/e/beta/dashboard'), 'still logged in after a reload')
  noErrors(admin, 'enterprise admin')

  // The session ends under the page: the next request returns to the login.
  await step('revoke beta-admin')
  expectError(admin, /status of 401/)
  expectError(admin, /status of 401/)
  await admin.page.getByRole('button', { name: '刷新' }).click()
  await admin.page.waitForURL(/#\/login\?.*expired=1/)
  await admin.page.getByText('登录已失效').waitFor()
  await admin.page.locator('.el-select').first().click()
  await admin.page.getByRole('option', { name: 'English' }).click()
  await admin.page.getByText('Your session has ended').waitFor()
  await admin.page.getByRole('button', { name: 'Log in' }).waitFor()
  // The errors of the ended session's requests, however many were in flight.
  admin.errors = admin.errors.filter((e) => !/status of 401/.test(e))
  noErrors(admin, 'after the session ended')
})
