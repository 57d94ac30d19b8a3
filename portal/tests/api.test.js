import { afterEach, expect, test, vi } from 'vitest'
import { api, ApiError, queryString, setCsrfToken, setUnauthenticatedHandler } from '../src/api.js'

afterEach(() => {
  vi.unstubAllGlobals()
  setCsrfToken(null)
  setUnauthenticatedHandler(() => {})
})

function answer(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })
}

test('query strings leave out empty values', () => {
  expect(queryString({ a: 1, b: '', c: null, d: 'x y' })).toBe('?a=1&d=x+y')
  expect(queryString({})).toBe('')
})

test('writes carry the CSRF token and JSON; reads do not', async () => {
  const calls = []
  vi.stubGlobal('fetch', async (url, init) => { calls.push([url, init]); return answer(200, { ok: true }, { ETag: '"3"' }) })
  setCsrfToken('token-1')
  const read = await api.get('/enterprises/acme/groups/sales')
  expect(read.etag).toBe('"3"')
  await api.put('/enterprises/acme/groups/sales', { strategy: 'sequential' }, { headers: { 'If-Match': '"3"' } })
  expect(calls[0][0]).toBe('/api/v1/enterprises/acme/groups/sales')
  expect(calls[0][1].headers['X-CSRF-Token']).toBeUndefined()
  expect(calls[1][1].headers['X-CSRF-Token']).toBe('token-1')
  expect(calls[1][1].headers['If-Match']).toBe('"3"')
  expect(JSON.parse(calls[1][1].body)).toEqual({ strategy: 'sequential' })
})

test('a refusal is an ApiError with its problems; a 401 ends the session', async () => {
  let ended = 0
  setUnauthenticatedHandler(() => { ended += 1 })
  vi.stubGlobal('fetch', async () => answer(422, { error: 'refused', errors: [{ entry: 'e', field: 'f', message: 'm' }] }))
  const refusal = await api.put('/x', {}).catch((e) => e)
  expect(refusal).toBeInstanceOf(ApiError)
  expect(refusal.status).toBe(422)
  expect(refusal.errors).toEqual([{ entry: 'e', field: 'f', message: 'm' }])
  expect(ended).toBe(0)
  vi.stubGlobal('fetch', async () => answer(401, { error: 'not logged in' }))
  await api.get('/me').catch(() => {})
  expect(ended).toBe(1)
  // A wrong password at the login is not a session ending.
  await api.post('/login', {}).catch(() => {})
  expect(ended).toBe(1)
})
