import { expect, test } from 'vitest'
import { countRows, dailySeries, heatmapCells, phoneRows, provinceData, provinceShortName } from '../src/records/charts.js'

// The shape crates/analytics' Report serialises to (trimmed to what the charts read).
const report = {
  days: {
    '2026-03-02': { calls: 3, answered: 1, missed: 1, refused: 1, cost: '0.325' },
    '2026-03-01': { calls: 0, answered: 0, missed: 0, refused: 0, cost: '0' },
  },
  weekday_hours: Array.from({ length: 7 }, (_, w) => Array.from({ length: 24 }, (_, h) => (w === 0 && h === 9 ? 5 : w === 6 && h === 23 ? 2 : 0))),
  provinces: { 广东: 3, 北京: 1, unknown: 2, 火星: 1 },
  phones: {
    '13900000001': { offered: 4, answered: 3, missed: 1, talk_seconds: 200, average_answer_ms: 3500 },
    'sip:desk@pbx': { offered: 0, answered: 0, missed: 0, talk_seconds: 0, average_answer_ms: null },
    '13900000002': { offered: 6, answered: 0, missed: 6, talk_seconds: 0, average_answer_ms: null },
  },
}

test('calls per day in date order, stacked by outcome, with the exact cost strings', () => {
  expect(dailySeries(report)).toEqual({
    days: ['2026-03-01', '2026-03-02'],
    answered: [0, 1],
    missed: [0, 1],
    refused: [0, 1],
    cost: ['0', '0.325'],
  })
  expect(dailySeries(null).days).toEqual([])
})

test('the heat map has a cell for every weekday and hour, Monday first', () => {
  const { cells, max } = heatmapCells(report)
  expect(cells).toHaveLength(7 * 24)
  expect(cells).toContainEqual([9, 0, 5])
  expect(cells).toContainEqual([23, 6, 2])
  expect(cells.filter((c) => c[2] > 0)).toHaveLength(2)
  expect(max).toBe(5)
  expect(heatmapCells({}).cells.every((c) => c[2] === 0)).toBe(true)
})

test('full province names become the map short names', () => {
  expect(provinceShortName('广东省')).toBe('广东')
  expect(provinceShortName('北京市')).toBe('北京')
  expect(provinceShortName('广西壮族自治区')).toBe('广西')
  expect(provinceShortName('内蒙古自治区')).toBe('内蒙古')
  expect(provinceShortName('新疆维吾尔自治区')).toBe('新疆')
  expect(provinceShortName('宁夏回族自治区')).toBe('宁夏')
  expect(provinceShortName('香港特别行政区')).toBe('香港')
  expect(provinceShortName('广东')).toBe('广东')
})

test('every province of the map gets a value, and calls it cannot place are counted apart', () => {
  const names = ['广东', '北京', '上海']
  const { data, unplaced, max } = provinceData({ ...report.provinces, 广东省: 2 }, names)
  expect(data).toEqual([{ name: '广东', value: 5 }, { name: '北京', value: 1 }, { name: '上海', value: 0 }])
  expect(unplaced).toBe(3)
  expect(max).toBe(5)
  const total = Object.values({ ...report.provinces, 广东省: 2 }).reduce((a, b) => a + b, 0)
  expect(data.reduce((a, d) => a + d.value, 0) + unplaced).toBe(total)
})

test('per phone, the busiest first, with its answer rate', () => {
  const rows = phoneRows(report.phones)
  expect(rows.map((r) => r.phone)).toEqual(['13900000002', '13900000001', 'sip:desk@pbx'])
  expect(rows[1]).toEqual({ phone: '13900000001', offered: 4, answered: 3, missed: 1, answerRate: 0.75, talkSeconds: 200, averageAnswerMs: 3500 })
  expect(rows[2].answerRate).toBe(null)
})

test('counts as rows, the largest first', () => {
  expect(countRows({ '1': 2, '1>3': 5, '2': 2 })).toEqual([
    { name: '1>3', count: 5 }, { name: '1', count: 2 }, { name: '2', count: 2 },
  ])
  expect(countRows(undefined)).toEqual([])
})
