// Every page is declared in routes/<area>.js (an array of vue-router routes with
// meta: { title, area: 'enterprise' | 'operator', nav, order, icon }), so that each area of
// the portal adds its pages without touching the others. Hash history: the daemon serves
// one page and the API; nothing else of a path has to reach it.
import { createRouter, createWebHashHistory } from 'vue-router'
import { session, restore, home, isOperator } from './session.js'
import Login from './pages/Login.vue'
import AppShell from './components/AppShell.vue'

const modules = import.meta.glob('./routes/*.js', { eager: true })
export const pages = Object.values(modules)
  .flatMap((m) => m.default)
  .sort((a, b) => (a.meta?.order ?? 99) - (b.meta?.order ?? 99))

export const enterprisePages = pages.filter((p) => p.meta?.area === 'enterprise')
export const operatorPages = pages.filter((p) => p.meta?.area === 'operator')

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/login', component: Login, meta: { public: true } },
    {
      path: '/e/:enterprise',
      component: AppShell,
      children: enterprisePages.map((p) => ({ ...p, path: p.path.replace(/^\//, '') })),
    },
    {
      path: '/op',
      component: AppShell,
      children: operatorPages.map((p) => ({ ...p, path: p.path.replace(/^\//, '') })),
    },
    { path: '/:rest(.*)*', redirect: () => home() },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.user && !(await restore())) {
    return { path: '/login', query: to.fullPath === '/' ? {} : { next: to.fullPath } }
  }
  if (to.path.startsWith('/op') && !isOperator()) return home()
  // An enterprise's users see their own enterprise only (the API would answer 404).
  if (to.params.enterprise && !isOperator() && to.params.enterprise !== session.user.enterprise) return home()
  return true
})
