// The traffic analysis (GET /analytics, crates/analytics `Report`) turned into what the
// charts and tables draw. Pure functions: the page only hands their results to ECharts.
// Money stays the API's exact decimal string; a chart's bar gets Number() of it only to
// be drawn, and every figure shown as text is the string itself.

export const WEEKDAYS = 7
export const HOURS = 24

/** Calls per day, stacked answered / missed / refused, and each day's exact cost. */
export function dailySeries(report) {
  const days = Object.keys(report?.days ?? {}).sort()
  const pick = (name) => days.map((d) => report.days[d][name] ?? 0)
  return {
    days,
    answered: pick('answered'),
    missed: pick('missed'),
    refused: pick('refused'),
    cost: days.map((d) => String(report.days[d].cost ?? '0')),
  }
}

/** The weekday × hour heat map: [hour, weekday, calls] cells (Monday = 0) and the largest. */
export function heatmapCells(report) {
  const rows = report?.weekday_hours ?? []
  const cells = []
  let max = 0
  for (let weekday = 0; weekday < WEEKDAYS; weekday++) {
    for (let hour = 0; hour < HOURS; hour++) {
      const value = Number(rows[weekday]?.[hour] ?? 0)
      cells.push([hour, weekday, value])
      if (value > max) max = value
    }
  }
  return { cells, max }
}

// The suffixes a province's full name may carry; the map (and sihai's region table)
// use the short name: 广西 for 广西壮族自治区, 北京 for 北京市.
const SUFFIXES = ['维吾尔自治区', '壮族自治区', '回族自治区', '特别行政区', '自治区', '省', '市']

/** A province's short name as the map names it: 广东省 -> 广东, 内蒙古自治区 -> 内蒙古. */
export function provinceShortName(name) {
  const text = String(name ?? '').trim()
  for (const suffix of SUFFIXES) {
    if (text.length > suffix.length + 1 && text.endsWith(suffix)) return text.slice(0, -suffix.length)
  }
  return text
}

/**
 * The callers' provinces on the map: one item per province the map draws (zero where
 * nobody called from), and the calls the map cannot place (`unknown`, or a name it
 * does not have) counted apart, so that no call goes missing from the figures.
 */
export function provinceData(provinces, mapNames) {
  const known = new Set(mapNames)
  const counts = new Map(mapNames.map((n) => [n, 0]))
  let unplaced = 0
  for (const [name, calls] of Object.entries(provinces ?? {})) {
    const short = provinceShortName(name)
    if (known.has(short)) counts.set(short, counts.get(short) + Number(calls))
    else unplaced += Number(calls)
  }
  const data = [...counts].map(([name, value]) => ({ name, value }))
  const max = data.reduce((m, d) => Math.max(m, d.value), 0)
  return { data, unplaced, max }
}

/** A {name: count} map as rows, the largest first (ties by name). */
export function countRows(map) {
  return Object.entries(map ?? {})
    .map(([name, count]) => ({ name, count: Number(count) }))
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))
}

/** The per-phone table: offered, answered, missed, answer rate, talk, average answer time. */
export function phoneRows(phones) {
  return Object.entries(phones ?? {})
    .map(([phone, f]) => ({
      phone,
      offered: f.offered,
      answered: f.answered,
      missed: f.missed,
      answerRate: f.offered > 0 ? f.answered / f.offered : null,
      talkSeconds: f.talk_seconds,
      averageAnswerMs: f.average_answer_ms ?? null,
    }))
    .sort((a, b) => b.offered - a.offered || a.phone.localeCompare(b.phone))
}
