// A voice menu's actions between the API's form ({ group = "…" }, "repeat",
// { extension = { prompt, max_digits, … } }) and the editor's (one object with a type),
// and the menu as a tree for el-tree: each node's keys, a key that goes to another node
// holding that node's own keys, a node already on the way shown as a link back.

export const KEY_ORDER = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#']

export function editableAction(action) {
  const out = { type: 'hangup', group: '', menu: '', prompt: '', max_digits: null, inter_digit_timeout: '', terminator: '#' }
  if (typeof action === 'string') return { ...out, type: action }
  if (action?.group !== undefined) return { ...out, type: 'group', group: action.group }
  if (action?.menu !== undefined) return { ...out, type: 'menu', menu: action.menu }
  if (action?.extension !== undefined) {
    const e = action.extension
    return { ...out, type: 'extension', prompt: e.prompt ?? '', max_digits: e.max_digits ?? null, inter_digit_timeout: e.inter_digit_timeout ?? '', terminator: e.terminator ?? '#' }
  }
  return out
}

export function writtenAction(action) {
  switch (action.type) {
    case 'group': return { group: action.group }
    case 'menu': return { menu: action.menu }
    case 'extension': {
      const extension = { prompt: action.prompt, max_digits: action.max_digits }
      if (action.inter_digit_timeout) extension.inter_digit_timeout = action.inter_digit_timeout
      if (action.terminator && action.terminator !== '#') extension.terminator = action.terminator
      return { extension }
    }
    default: return action.type
  }
}

/** A key as the validator writes it in a field path: 1, "*", "#". */
export function renderKey(key) {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key)
}

export function sortKeys(keys) {
  return [...keys].sort((a, b) => KEY_ORDER.indexOf(a) - KEY_ORDER.indexOf(b))
}

/**
 * The el-tree data of a menu (editable nodes: { name, options: [{ key, action }],
 * default }), from its root. `describe(action)` labels an action.
 */
export function menuTree(nodes, root, describe) {
  const byName = new Map(nodes.map((n) => [n.name, n]))
  let next = 0
  function build(name, path) {
    const node = byName.get(name)
    const id = `n${next++}`
    if (!node) return { id, label: name, node: name, missing: true, children: [] }
    const children = node.options.map((option) => {
      const child = { id: `n${next++}`, label: `${option.key} → ${describe(option.action)}`, node: name, key: option.key, kind: 'option' }
      if (option.action.type === 'menu' && option.action.menu) {
        if (path.includes(option.action.menu)) child.back = option.action.menu
        else child.children = [build(option.action.menu, [...path, option.action.menu])]
      }
      return child
    })
    children.push({ id: `n${next++}`, label: describe(node.default), node: name, kind: 'default' })
    return { id, label: name, node: name, prompt: node.prompt, kind: 'node', children }
  }
  const tree = root ? [build(root, [root])] : []
  // Nodes no key leads to are still the menu's: listed after the root's tree.
  const reached = new Set()
  const walk = (items) => items.forEach((i) => { if (i.kind === 'node') reached.add(i.node); walk(i.children ?? []) })
  walk(tree)
  for (const node of nodes) if (!reached.has(node.name)) tree.push({ ...build(node.name, [node.name]), unreached: true })
  return tree
}
