// The configuration pages' round trip with the tenant data of the admin API
// (GET/PUT/DELETE /enterprises/{id}/{collection}/{key}): an entry is
// {section, key, revision, data, hidden}; a write sends the revision it was read at as
// If-Match, so that a change someone else made meanwhile is refused (409) rather than
// overwritten. Each write is in force for the next call; the page says so.
import { ElMessage } from 'element-plus'
import { api, ApiError } from '../api.js'
import { useForm } from '../form.js'
import { t } from '../i18n.js'
import { reactive } from 'vue'

export function entryPath(enterprise, collection, key) {
  const base = `/enterprises/${encodeURIComponent(enterprise)}/${collection}`
  return key === undefined ? base : `${base}/${encodeURIComponent(key)}`
}

export function listEntries(enterprise, collection) {
  return api.get(entryPath(enterprise, collection))
}

/** The `If-Match` header of an entry read earlier; none for a new entry. */
export function ifMatch(entry) {
  return entry && entry.revision !== undefined ? { 'If-Match': `"${entry.revision}"` } : {}
}

/** A JSON body without nulls, empty strings or undefined values (the API takes no nulls). */
export function clean(value) {
  if (Array.isArray(value)) return value.map(clean)
  if (value && typeof value === 'object') {
    const out = {}
    for (const [name, inner] of Object.entries(value)) {
      if (inner === null || inner === undefined || inner === '') continue
      out[name] = clean(inner)
    }
    return out
  }
  return value
}

export function putEntry(enterprise, collection, key, data, entry) {
  return api.put(entryPath(enterprise, collection, key), clean(data), { headers: ifMatch(entry) })
}

export function deleteEntry(enterprise, collection, key, entry) {
  return api.del(entryPath(enterprise, collection, key), { headers: ifMatch(entry) })
}

/**
 * useForm() with what the configuration pages add: `conflict` when the API answered
 * 409 (someone else changed the entry: the page offers to reload it), and the success
 * message once a write is in force.
 */
export function useEntryForm() {
  const form = useForm()
  const extra = reactive({ conflict: false })
  async function save(action, { message = t('cfg.savedLive') } = {}) {
    extra.conflict = false
    const result = await form.submit(async () => {
      try {
        return (await action()) ?? true
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) extra.conflict = true
        throw error
      }
    })
    if (result !== undefined) ElMessage({ type: 'success', message, customClass: 'cfg-saved', duration: 2000 })
    return result
  }
  return { ...form, extra, save }
}

/** A copy of plain JSON data, for editing without touching what was read. */
export function copy(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value))
}
