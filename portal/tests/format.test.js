import { expect, test } from 'vitest'
import { yuan, duration, percent, dateTime, shanghaiDay } from '../src/format.js'

test('money is shown exactly as the API wrote it, grouped', () => {
  expect(yuan('1234567.50')).toBe('¥1,234,567.50')
  expect(yuan('-12.05')).toBe('-¥12.05')
  expect(yuan('0.00')).toBe('¥0.00')
  expect(yuan('100')).toBe('¥100')
  expect(yuan(null)).toBe('—')
})

test('durations', () => {
  expect(duration(0)).toBe('0:00')
  expect(duration(125000)).toBe('2:05')
  expect(duration(3725000)).toBe('1:02:05')
})

test('percentages and missing figures', () => {
  expect(percent(0.8734)).toBe('87.3%')
  expect(percent(1)).toBe('100.0%')
  expect(percent(null)).toBe('—')
})

test('times are Shanghai times whatever the browser zone', () => {
  expect(dateTime('2026-03-01T16:30:05Z')).toBe('2026-03-02 00:30:05')
  expect(shanghaiDay(new Date('2026-03-01T16:30:05Z'))).toBe('2026-03-02')
  expect(shanghaiDay(new Date('2026-03-01T15:59:59Z'))).toBe('2026-03-01')
})
