import { describe, expect, test } from 'vitest'
import { clean, ifMatch } from '../src/components/cfgEntries.js'
import { editableAction, writtenAction, renderKey, sortKeys, menuTree } from '../src/components/cfgMenus.js'

describe('configuration entries', () => {
  test('a body has no nulls or empty strings (the API refuses nulls)', () => {
    expect(clean({ strategy: 'sequential', phones: [{ number: '139', ring_timeout_s: null, uri: '' }], welcome: undefined }))
      .toEqual({ strategy: 'sequential', phones: [{ number: '139' }] })
  })

  test('If-Match carries the revision read, and nothing for a new entry', () => {
    expect(ifMatch({ revision: 7 })).toEqual({ 'If-Match': '"7"' })
    expect(ifMatch(null)).toEqual({})
  })
})

describe('voice menu actions', () => {
  test('every form of an action comes back as written', () => {
    for (const action of ['repeat', 'previous', 'hangup', { group: 'sales' }, { menu: 'service' },
      { extension: { prompt: 'dial-extension', max_digits: 4 } },
      { extension: { prompt: 'dial-extension', max_digits: 4, inter_digit_timeout: '5s', terminator: '*' } }]) {
      expect(writtenAction(editableAction(action))).toEqual(action)
    }
  })

  test('keys are written as the validator names them, and sorted as on a keypad', () => {
    expect(renderKey('1')).toBe('1')
    expect(renderKey('#')).toBe('"#"')
    expect(sortKeys(['#', '0', '*', '2', '1'])).toEqual(['1', '2', '0', '*', '#'])
  })

  test('the tree hangs a submenu under its key, links back instead of looping, and keeps unreached nodes', () => {
    const node = (name, options, fallback = 'hangup') => ({
      name, prompt: `${name}-prompt`, default: editableAction(fallback),
      options: Object.entries(options).map(([key, action]) => ({ key, action: editableAction(action) })),
    })
    const nodes = [
      node('main', { 1: { group: 'sales' }, 2: { menu: 'service' } }, { group: 'sales' }),
      node('service', { 1: { menu: 'main' } }, 'previous'),
      node('orphan', {}),
    ]
    const tree = menuTree(nodes, 'main', (a) => a.type)
    expect(tree.map((n) => [n.node, Boolean(n.unreached)])).toEqual([['main', false], ['orphan', true]])
    const [one, two, fallback] = tree[0].children
    expect([one.key, one.label]).toEqual(['1', '1 → group'])
    expect(two.children[0].node).toBe('service')
    const back = two.children[0].children[0]
    expect([back.key, back.back, back.children]).toEqual(['1', 'main', undefined])
    expect(fallback.kind).toBe('default')
  })
})
