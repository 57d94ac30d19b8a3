// The call records' filters, as the page keeps them in its URL (so that a reload, a
// bookmark or the back button shows the same calls) and as the API takes them: whole
// Asia/Shanghai days become RFC 3339 instants (the API's `since` is inclusive, `until`
// exclusive, so a range ends at the midnight after its last day).

export const OUTCOMES = ['answered', 'no_answer', 'busy', 'cancelled', 'after_hours', 'failed', 'rejected', 'blacklisted', 'out_of_credit']

const DAY = /^\d{4}-\d{2}-\d{2}$/

/** The day after `day` (YYYY-MM-DD), on the calendar: no time zone involved. */
export function nextDay(day) {
  const [y, m, d] = day.split('-').map(Number)
  const date = new Date(Date.UTC(y, m - 1, d + 1))
  return date.toISOString().slice(0, 10)
}

/** `day` plus `n` calendar days (n may be negative). */
export function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number)
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10)
}

/** Shanghai midnight at the start of `day`, as the API's RFC 3339. */
export function dayStart(day) {
  return `${day}T00:00:00+08:00`
}

/** The filters named in a route's query, checked: anything malformed is left out. */
export function filtersFromQuery(query = {}) {
  const text = (v) => (typeof v === 'string' ? v.trim() : '')
  const from = text(query.from)
  const to = text(query.to)
  const outcome = text(query.outcome)
  return {
    from: DAY.test(from) ? from : '',
    to: DAY.test(to) ? to : '',
    number: text(query.number),
    caller: text(query.caller),
    outcome: OUTCOMES.includes(outcome) ? outcome : '',
  }
}

/** The route query of the filters (empty ones left out). */
export function queryFromFilters(filters) {
  const query = {}
  for (const [name, value] of Object.entries(filters)) if (value) query[name] = value
  return query
}

/** The API's query for the filters: since/until from the days, the rest as typed. */
export function apiQuery(filters) {
  return {
    since: filters.from ? dayStart(filters.from) : undefined,
    until: filters.to ? dayStart(nextDay(filters.to)) : undefined,
    number: filters.number || undefined,
    caller: filters.caller || undefined,
    outcome: filters.outcome || undefined,
  }
}

/** How a CDR's attempts read: "13900000001 answered, sip:desk@… 486". */
export function attemptsText(attempts) {
  return (attempts ?? []).map((a) => `${a.phone} ${a.result}`).join(', ')
}

/** The month before `month` (YYYY-MM) and after it. */
export function shiftMonth(month, n) {
  const [y, m] = month.split('-').map(Number)
  const date = new Date(Date.UTC(y, m - 1 + n, 1))
  return date.toISOString().slice(0, 7)
}
