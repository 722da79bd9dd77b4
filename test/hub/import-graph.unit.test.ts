import { describe, expect, it } from 'vitest'
import { relative, resolve } from 'node:path'
import { importCycles, importGraph } from '../../scripts/import-cycles.js'

const root = resolve('hub/src')

describe('the hub\'s imports', () => {
  it('form no cycle, type-only imports included', () => {
    expect(importCycles(root)).toEqual([])
  })

  it('run registry → normalize and never back', () => {
    const back = [...importGraph(root)]
      .filter(([file]) => relative(root, file).startsWith('normalize/'))
      .flatMap(([file, targets]) => targets.filter((t) => relative(root, t).startsWith('registry/')).map((t) => `${relative(root, file)} → ${relative(root, t)}`))
    expect(back).toEqual([])
  })
})
