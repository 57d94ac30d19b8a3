import { createApp } from 'vue'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import './style.css'
import App from './App.vue'
import { router } from './router.js'
import { setUnauthenticatedHandler } from './api.js'
import { forget, session } from './session.js'
import { language, setLanguage } from './i18n.js'

setLanguage(language.value)

// The session ended (expired, revoked, password changed elsewhere): back to the login,
// which says so, and then back here.
setUnauthenticatedHandler(() => {
  const wasLoggedIn = session.user !== null
  forget()
  const current = router.currentRoute.value
  if (current.path !== '/login') {
    router.push({ path: '/login', query: { next: current.fullPath, ...(wasLoggedIn ? { expired: '1' } : {}) } })
  }
})

createApp(App).use(ElementPlus).use(router).mount('#app')
