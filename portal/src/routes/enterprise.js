// The enterprise's own backend (独立后台): /e/<enterprise>/<page>.
export default [
  { path: '/dashboard', component: () => import('../pages/enterprise/Dashboard.vue'), meta: { area: 'enterprise', title: 'nav.dashboard', order: 10 } },
]
