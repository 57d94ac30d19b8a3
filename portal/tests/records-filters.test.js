import { expect, test } from 'vitest'
import { addDays, apiQuery, attemptsText, dayStart, filtersFromQuery, nextDay, queryFromFilters, shiftMonth } from '../src/records/filters.js'

test('days move on the calendar, across months, years and leap days', () => {
  expect(nextDay('2026-03-01')).toBe('2026-03-02')
  expect(nextDay('2026-02-28')).toBe('2026-03-01')
  expect(nextDay('2028-02-28')).toBe('2028-02-29')
  expect(nextDay('2026-12-31')).toBe('2027-01-01')
  expect(addDays('2026-03-01', -6)).toBe('2026-02-23')
  expect(dayStart('2026-03-01')).toBe('2026-03-01T00:00:00+08:00')
})

test('a range of whole Shanghai days is since its first midnight until the midnight after its last', () => {
  expect(apiQuery({ from: '2026-03-01', to: '2026-03-31', number: '', caller: '138', outcome: 'answered' })).toEqual({
    since: '2026-03-01T00:00:00+08:00',
    until: '2026-04-01T00:00:00+08:00',
    number: undefined,
    caller: '138',
    outcome: 'answered',
  })
  expect(apiQuery({ from: '', to: '', number: '4001234567', caller: '', outcome: '' })).toEqual({
    since: undefined, until: undefined, number: '4001234567', caller: undefined, outcome: undefined,
  })
})

test("the URL's filters are checked, and round-trip", () => {
  const filters = filtersFromQuery({ from: '2026-03-01', to: 'yesterday', outcome: 'missed', caller: ' 138 ', number: ['x'] })
  expect(filters).toEqual({ from: '2026-03-01', to: '', number: '', caller: '138', outcome: '' })
  expect(queryFromFilters(filters)).toEqual({ from: '2026-03-01', caller: '138' })
  expect(filtersFromQuery(queryFromFilters(filters))).toEqual(filters)
})

test('attempts and months', () => {
  expect(attemptsText([{ phone: '13900000001', result: 'no_answer' }, { phone: 'sip:desk@pbx', result: 'answered' }]))
    .toBe('13900000001 no_answer, sip:desk@pbx answered')
  expect(attemptsText(undefined)).toBe('')
  expect(shiftMonth('2026-01', -1)).toBe('2025-12')
  expect(shiftMonth('2026-12', 1)).toBe('2027-01')
})
