// The enterprise's configuration (its own backend, 独立后台): bound phones, business
// hours, black and white lists, the voice menu and extensions, ringback and prompts.
export default [
  { path: '/phones', component: () => import('../pages/enterprise/Phones.vue'), meta: { area: 'enterprise', title: 'nav.phones', order: 20 } },
]
