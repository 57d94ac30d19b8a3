// Who is logged in. The session is the API's cookie (HttpOnly: the page never sees it);
// the page keeps the user and the CSRF token the API gives at login, or on reload from
// GET /me. When the API answers 401 the session is over (expired, revoked, password
// changed elsewhere): the page forgets it and returns to the login.
import { reactive } from 'vue'
import { api, setCsrfToken } from './api.js'

export const session = reactive({ user: null, checked: false })

export function isOperator() {
  return session.user?.role === 'operator'
}

export function isEnterpriseAdmin() {
  return session.user?.role === 'enterprise_admin'
}

/** Whether the user may change the enterprise's data (viewers only read). */
export function canWrite() {
  return isOperator() || isEnterpriseAdmin()
}

// Whether this browser logged in and has not logged out: the cookie is HttpOnly, so the
// page keeps its own note, and does not ask the API (a 401 in the console) when it never
// logged in.
const SIGNED_IN = 'sihai.signedIn'
const storage = typeof localStorage !== 'undefined' ? localStorage : null

/** Asks the API who the cookie belongs to; false when nobody. */
export async function restore() {
  if (!storage?.getItem(SIGNED_IN)) {
    session.checked = true
    return false
  }
  try {
    const me = await api.get('/me')
    setCsrfToken(me.csrf_token)
    session.user = { login: me.login, role: me.role, enterprise: me.enterprise ?? null }
    return true
  } catch {
    forget()
    return false
  } finally {
    session.checked = true
  }
}

export async function login(name, password) {
  const answer = await api.post('/login', { login: name, password })
  setCsrfToken(answer.csrf_token)
  session.user = { login: answer.user.login, role: answer.user.role, enterprise: answer.user.enterprise ?? null }
  session.checked = true
  storage?.setItem(SIGNED_IN, '1')
  return session.user
}

export async function logout() {
  try {
    await api.post('/logout')
  } finally {
    forget()
  }
}

export function forget() {
  storage?.removeItem(SIGNED_IN)
  session.user = null
  setCsrfToken(null)
}

/** Where a user starts: the operator on the node, everyone else on their dashboard. */
export function home(user = session.user) {
  if (!user) return '/login'
  if (user.role === 'operator') return '/op/node'
  return `/e/${user.enterprise}/dashboard`
}
