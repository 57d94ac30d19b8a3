// How the portal writes figures. Money arrives from the API as exact decimal strings of
// yuan ("12.50", "-3.00"): it is shown as it came, never turned into a float.
import { language } from './i18n.js'

export const TIME_ZONE = 'Asia/Shanghai'

export function yuan(amount) {
  if (amount === null || amount === undefined || amount === '') return '—'
  const text = String(amount)
  const negative = text.startsWith('-')
  const digits = negative ? text.slice(1) : text
  const [whole, fraction = ''] = digits.split('.')
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return `${negative ? '-' : ''}¥${grouped}${fraction ? `.${fraction}` : ''}`
}

/** 125 000 ms -> "2:05"; an hour and more -> "1:02:05". */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—'
  const total = Math.round(Number(ms) / 1000)
  const hours = Math.floor(total / 3600)
  const minutes = Math.floor((total % 3600) / 60)
  const seconds = total % 60
  const two = (n) => String(n).padStart(2, '0')
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`
}

/** 0.8734 -> "87.3%". */
export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(Number(ratio))) return '—'
  return `${(Number(ratio) * 100).toFixed(1)}%`
}

/** An RFC 3339 instant shown in Shanghai time: "2026-12-07 15:04:05". */
export function dateTime(instant) {
  if (!instant) return '—'
  const date = new Date(instant)
  if (Number.isNaN(date.getTime())) return String(instant)
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(date)
  const get = (type) => parts.find((p) => p.type === type)?.value ?? ''
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`
}

/** Today's date in Shanghai, YYYY-MM-DD (what the API's day ranges are in). */
export function shanghaiDay(date = new Date(), offsetDays = 0) {
  const shifted = new Date(date.getTime() + offsetDays * 86400000)
  return new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(shifted)
}

/** The current month in Shanghai, YYYY-MM. */
export function shanghaiMonth(date = new Date()) {
  return shanghaiDay(date).slice(0, 7)
}

export function number(value) {
  if (value === null || value === undefined) return '—'
  return new Intl.NumberFormat(language.value === 'zh' ? 'zh-CN' : 'en-US').format(value)
}
