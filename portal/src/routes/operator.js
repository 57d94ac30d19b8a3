// The operator's pages: /op/<page>.
export default [
  { path: '/enterprises', component: () => import('../pages/operator/Enterprises.vue'), meta: { area: 'operator', title: 'nav.enterprises', order: 110 } },
]
