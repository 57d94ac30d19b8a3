// The enterprise's configuration (its own backend, 独立后台): bound phones, business
// hours, black and white lists, the voice menu and extensions, ringback and prompts.
export default [
  { path: '/phones', component: () => import('../pages/enterprise/Phones.vue'), meta: { area: 'enterprise', title: 'nav.phones', order: 20 } },
  { path: '/schedules', component: () => import('../pages/enterprise/Schedules.vue'), meta: { area: 'enterprise', title: 'nav.schedules', order: 21 } },
  { path: '/lists', component: () => import('../pages/enterprise/Lists.vue'), meta: { area: 'enterprise', title: 'nav.lists', order: 22 } },
  { path: '/menus', component: () => import('../pages/enterprise/Menus.vue'), meta: { area: 'enterprise', title: 'nav.menus', order: 23 } },
  { path: '/prompts', component: () => import('../pages/enterprise/Prompts.vue'), meta: { area: 'enterprise', title: 'nav.prompts', order: 24 } },
]
