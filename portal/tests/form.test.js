import { expect, test } from 'vitest'
import { fieldMatches, useForm } from '../src/form.js'
import { ApiError } from '../src/api.js'

test('a field path belongs to its item and to the items it is inside of', () => {
  expect(fieldMatches('phones[0].uri', 'phones[0].uri')).toBe(true)
  expect(fieldMatches('phones[0].uri', 'phones[0]')).toBe(true)
  expect(fieldMatches('phones[0].uri', 'phones')).toBe(true)
  expect(fieldMatches('phones_extra', 'phones')).toBe(false)
  expect(fieldMatches('', 'phones')).toBe(false)
})

test('a refused write puts each message at its field and keeps the rest for the alert', async () => {
  const form = useForm()
  const refusal = new ApiError(422, {
    error: 'the write was refused: 2 problem(s)',
    errors: [
      { entry: 'group/sales', field: 'phones[1].uri', message: 'not a SIP URI' },
      { entry: 'group/sales', field: 'strategy', message: 'unknown variant' },
    ],
  })
  const answer = await form.submit(async () => { throw refusal })
  expect(answer).toBeUndefined()
  expect(form.state.busy).toBe(false)
  expect(form.state.message).toBe('the write was refused: 2 problem(s)')
  expect(form.fieldError('phones[1].uri')).toBe('not a SIP URI')
  expect(form.fieldError('phones[0].uri')).toBe('')
  expect(form.unclaimed().map((e) => e.field)).toEqual(['strategy'])
  expect(await form.submit(async () => 7)).toBe(7)
  expect(form.state.message).toBe('')
  expect(form.fieldError('phones[1].uri')).toBe('')
})
