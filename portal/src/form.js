// A form's round trip with the API: busy while the request runs; a refusal's message
// next to the field it names (the API's `field` path, e.g. `phones[0].uri`), and the rest
// in the form's alert (FormAlert.vue). Pure state: the components only render it.
import { reactive } from 'vue'
import { ApiError } from './api.js'

/** Whether an error's field path belongs to the form item `name` (itself or inside it). */
export function fieldMatches(field, name) {
  if (!field || !name) return false
  return field === name || field.startsWith(`${name}.`) || field.startsWith(`${name}[`)
}

export function useForm() {
  const state = reactive({ busy: false, message: '', errors: [] })
  const claimed = new Set()

  /** The messages of the errors at `name` (and inside it), joined; '' when none. */
  function fieldError(name) {
    claimed.add(name)
    return state.errors
      .filter((e) => fieldMatches(e.field, name))
      .map((e) => e.message)
      .join('; ')
  }

  /** The errors no form item showed: the alert lists them with their field. */
  function unclaimed() {
    return state.errors.filter((e) => ![...claimed].some((name) => fieldMatches(e.field, name)))
  }

  function clear() {
    state.message = ''
    state.errors = []
  }

  /** Runs `action`; on a refusal keeps its messages and answers undefined. */
  async function submit(action) {
    state.busy = true
    clear()
    try {
      return await action()
    } catch (error) {
      state.message = error instanceof ApiError || error instanceof Error ? error.message : String(error)
      state.errors = error instanceof ApiError ? error.errors : []
      return undefined
    } finally {
      state.busy = false
    }
  }

  return { state, fieldError, unclaimed, clear, submit }
}
