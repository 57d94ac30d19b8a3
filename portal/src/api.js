// The admin API, as the portal calls it: JSON over fetch with the session cookie and its
// CSRF token. A refused request throws an ApiError carrying the API's sentence and, for a
// rejected write, every problem as {entry, field, message}, so that a form can show each
// message next to the field it names. A 401 (session expired or revoked) is reported once
// to the session, which returns to the login page.

const BASE = '/api/v1'

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : []
  }
}

let csrfToken = null
let onUnauthenticated = () => {}

export function setCsrfToken(token) {
  csrfToken = token || null
}

export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function queryString(query) {
  if (!query) return ''
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    params.append(name, String(value))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** The URL of an API path, for links the browser follows itself (CSV, audio). */
export function apiUrl(path, query) {
  return `${BASE}${path}${queryString(query)}`
}

async function request(method, path, { query, body, headers = {}, raw = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) init.headers['X-CSRF-Token'] = csrfToken
  if (body instanceof Blob) {
    init.body = body
    if (!init.headers['Content-Type'] && body.type) init.headers['Content-Type'] = body.type
  } else if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers['Content-Type'] = 'application/json'
  }
  const response = await fetch(apiUrl(path, query), init)
  if (!response.ok) {
    let parsed = null
    try {
      parsed = await response.json()
    } catch {
      parsed = null
    }
    const error = new ApiError(response.status, parsed)
    if (response.status === 401 && path !== '/login') onUnauthenticated(error)
    throw error
  }
  if (raw) return response
  if (response.status === 204) return null
  const text = await response.text()
  const value = text ? JSON.parse(text) : null
  const etag = response.headers.get('ETag')
  if (etag && value && typeof value === 'object' && !Array.isArray(value)) {
    Object.defineProperty(value, 'etag', { value: etag, enumerable: false })
  }
  return value
}

export const api = {
  get: (path, query) => request('GET', path, { query }),
  post: (path, body, options = {}) => request('POST', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  del: (path, options = {}) => request('DELETE', path, options),
  raw: (method, path, options = {}) => request(method, path, { ...options, raw: true }),
}
