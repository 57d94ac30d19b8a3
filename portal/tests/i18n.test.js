import { describe, expect, test } from 'vitest'
import { messages, t, setLanguage } from '../src/i18n.js'

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

describe('messages', () => {
  test('Chinese and English have exactly the same keys', () => {
    const zh = Object.keys(messages.zh).sort()
    const en = Object.keys(messages.en).sort()
    expect(zh.filter((k) => !en.includes(k))).toEqual([])
    expect(en.filter((k) => !zh.includes(k))).toEqual([])
    expect(zh.length).toBeGreaterThan(20)
  })

  test('each message has the same placeholders in both languages', () => {
    for (const key of Object.keys(messages.zh)) {
      expect([key, placeholders(messages.en[key] ?? '')]).toEqual([key, placeholders(messages.zh[key])])
    }
  })

  test('no message is empty', () => {
    for (const language of ['zh', 'en']) {
      for (const [key, text] of Object.entries(messages[language])) expect([key, text.trim().length > 0]).toEqual([key, true])
    }
  })

  test('t fills placeholders and follows the language', () => {
    setLanguage('en')
    expect(t('app.confirmDelete', { name: 'sales' })).toBe('Delete sales?')
    setLanguage('zh')
    expect(t('app.confirmDelete', { name: 'sales' })).toBe('确定删除 sales 吗？')
    expect(t('no.such.key')).toBe('no.such.key')
  })
})
