// Simplified Chinese first, English on a switch. Messages live in locales/<lang>/<area>.js
// (one file per area of the portal, flat keys such as 'phones.title'); a unit test checks
// that both languages have exactly the same keys and the same {placeholders}.
import { ref } from 'vue'

const modules = import.meta.glob('./locales/*/*.js', { eager: true })

export const LANGUAGES = ['zh', 'en']
export const messages = { zh: {}, en: {} }
for (const [path, module] of Object.entries(modules)) {
  const language = path.split('/')[2]
  if (messages[language]) Object.assign(messages[language], module.default)
}

const saved = typeof localStorage !== 'undefined' ? localStorage.getItem('sihai.language') : null
export const language = ref(LANGUAGES.includes(saved) ? saved : 'zh')

export function setLanguage(value) {
  if (!LANGUAGES.includes(value)) return
  language.value = value
  if (typeof localStorage !== 'undefined') localStorage.setItem('sihai.language', value)
  if (typeof document !== 'undefined') document.documentElement.lang = value === 'zh' ? 'zh-CN' : 'en'
}

/** The message `key` in the current language, with `{name}` replaced from `params`. */
export function t(key, params) {
  const text = messages[language.value][key] ?? messages.zh[key] ?? key
  if (!params) return text
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole))
}
