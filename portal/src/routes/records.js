// What an enterprise reads of its calls and money: the call records (with their
// recordings), the monthly bills and ledger, the traffic analysis.
export default [
  { path: '/records', component: () => import('../pages/enterprise/Records.vue'), meta: { area: 'enterprise', title: 'nav.records', order: 30 } },
  { path: '/bills', component: () => import('../pages/enterprise/Bills.vue'), meta: { area: 'enterprise', title: 'nav.bills', order: 32 } },
  { path: '/analytics', component: () => import('../pages/enterprise/Analytics.vue'), meta: { area: 'enterprise', title: 'nav.analytics', order: 34 } },
]
