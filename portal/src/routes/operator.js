// The operator's pages: /op/<page>.
export default [
  { path: '/node', component: () => import('../pages/operator/Node.vue'), meta: { area: 'operator', title: 'nav.node', order: 100 } },
  { path: '/enterprises', component: () => import('../pages/operator/Enterprises.vue'), meta: { area: 'operator', title: 'nav.enterprises', order: 110 } },
  { path: '/numbers', component: () => import('../pages/operator/Numbers.vue'), meta: { area: 'operator', title: 'nav.numbers', order: 120 } },
  { path: '/accounts', component: () => import('../pages/operator/Accounts.vue'), meta: { area: 'operator', title: 'nav.accounts', order: 130 } },
  { path: '/payments', component: () => import('../pages/operator/Payments.vue'), meta: { area: 'operator', title: 'nav.payments', order: 140 } },
  { path: '/audit', component: () => import('../pages/operator/Audit.vue'), meta: { area: 'operator', title: 'nav.audit', order: 150 } },
]
