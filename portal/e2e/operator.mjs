// The operator's console: lands on the node's live view; creates an enterprise (a bad id
// refused at its field); sees every enterprise's numbers; finds acme suspended on the
// accounts page, recharges it (its number works again: the Rust side places the call),
// posts the same reference again (nothing posted twice, and the page says so), has an
// adjustment without its reason refused at the field; suspends and resumes the
// enterprise (its number refuses, then takes calls); watches a held call in progress on
// the node view; finds the recharge in the audit log.
import { BASE, check, expectError, login, noErrors, open, run, screenshots, step } from './lib.mjs'

await run(async (browser) => {
  const op = await open(browser)
  const { page } = op
  await login(op, 'ops')
  await page.waitForURL(/#\/op\/node/)
  await page.locator('[data-figure=in-progress] .value').getByText('0', { exact: true }).waitFor()

  // A new enterprise; a bad id first.
  await page.goto(`${BASE}/#/op/enterprises`)
  await page.locator('[data-action=create-enterprise]').click()
  const dialog = page.getByRole('dialog')
  await dialog.locator('input[name=id]').fill('Bad Id')
  await dialog.locator('input[name=name]').fill('伽马科技')
  expectError(op, /status of 422/)
  await dialog.locator('[data-action=save-enterprise]').click()
  // The validator's own sentence, under the id it names (not the form's labels).
  const idItem = dialog.locator('.el-form-item').filter({ has: page.locator('input[name=id]') })
  await idItem.locator('.el-form-item__error').waitFor()
  const refusal = await idItem.locator('.el-form-item__error').innerText()
  check(refusal.includes('invalid enterprise id "Bad Id"'), `the refusal names the id: ${refusal}`)
  await dialog.locator('input[name=id]').fill('gamma')
  await dialog.locator('[data-action=save-enterprise]').click()
  await dialog.waitFor({ state: 'hidden' })
  await page.locator('.el-table').getByText('伽马科技').waitFor()
  noErrors(op, 'enterprises')

  // The numbers of every enterprise.
  await page.goto(`${BASE}/#/op/numbers`)
  await page.locator('.el-table').getByText('4001234567').waitFor()
  await screenshots(op, 'operator-numbers')
  noErrors(op, 'numbers')

  // acme's account is suspended, and its number refuses calls.
  await step('acme refuses calls')
  await page.goto(`${BASE}/#/op/accounts`)
  await page.locator('[data-status=acme]').getByText('已停机').waitFor()
  await page.locator('[data-filter=attention]').click()
  await page.locator('.el-table').getByText('acme', { exact: true }).waitFor()
  await screenshots(op, 'operator-accounts')

  // Recharged from its row: the page says it resumed.
  await page.locator('.el-table a', { hasText: '充值' }).first().click()
  await page.waitForURL(/#\/op\/payments\?enterprise=acme/)
  await page.locator('input[name=amount]').fill('100')
  await page.locator('input[name=reference]').fill('bank-7')
  await page.locator('input[name=note]').fill('十二月')
  await page.locator('[data-action=post-payment]').click()
  const result = page.getByRole('status')
  await result.getByText('已入账').waitFor()
  const text = await result.innerText()
  check(text.includes('¥100') && text.includes('acme: resumed'), `the recharge and the resumption are shown: ${text}`)
  await screenshots(op, 'operator-payments')
  await step('recharged')

  // The same reference again: nothing posted twice.
  await page.locator('[data-action=post-payment]').click()
  await result.getByText('本次未重复入账').waitFor()
  // An adjustment needs its reason.
  await page.locator('[data-kind=adjustment]').click()
  await page.locator('input[name=amount]').fill('-5')
  await page.locator('input[name=reference]').fill('fix-1')
  await page.locator('input[name=note]').fill('')
  expectError(op, /status of 422/)
  await page.locator('[data-action=post-payment]').click()
  const noteItem = page.locator('.el-form-item').filter({ has: page.locator('input[name=note]') })
  await noteItem.locator('.el-form-item__error').waitFor()
  noErrors(op, 'payments')

  await page.goto(`${BASE}/#/op/accounts`)
  await page.locator('[data-status=acme]').getByText('正常').waitFor()

  // The enterprise suspended, then resumed.
  await page.goto(`${BASE}/#/op/enterprises`)
  await page.locator('[data-suspend=acme]').click()
  await page.getByRole('dialog').getByRole('button', { name: '暂停' }).click()
  await page.locator('[data-enterprise-status=acme]').getByText('已暂停').waitFor()
  await screenshots(op, 'operator-enterprises')
  await step('acme suspended')
  await page.locator('[data-resume=acme]').click()
  await page.locator('[data-enterprise-status=acme]').getByText('正常').waitFor()
  await step('acme resumed')
  noErrors(op, 'suspension')

  // A call in progress on the live view.
  await page.goto(`${BASE}/#/op/node`)
  await page.locator('[data-figure=in-progress] .value').getByText('0', { exact: true }).waitFor()
  await step('hold a call')
  await page.locator('[data-figure=in-progress] .value').getByText('1', { exact: true }).waitFor()
  await screenshots(op, 'operator-node')
  await step('release the call')
  await page.locator('[data-figure=in-progress] .value').getByText('0', { exact: true }).waitFor()
  noErrors(op, 'node')

  // The audit log has the recharge, with its actor.
  await page.goto(`${BASE}/#/op/audit`)
  await page.locator('input[name=audit-filter]').fill('recharge')
  const row = page.locator('.el-table__row').filter({ hasText: 'acme' }).first()
  await row.waitFor()
  check((await row.innerText()).includes('ops'), 'the recharge is audited with its actor')
  await screenshots(op, 'operator-audit')
  noErrors(op, 'audit')
})
