import { breezewellAp3 } from './breezewell-ap3.js'
import { frostlineF2 } from './frostline-f2.js'
import { hearthwayT100 } from './hearthway-t100.js'
import { sudsmithW8 } from './sudsmith-w8.js'
import { voltwiseP1 } from './voltwise-p1.js'
import type { BuiltInDialect } from './dialect.js'

export type { BuiltInDialect } from './dialect.js'
export { breezewellAp3, frostlineF2, hearthwayT100, sudsmithW8, voltwiseP1 }

/** Every brand the hub knows out of the box, as mapping data. */
export const builtInDialects: readonly BuiltInDialect[] = [frostlineF2, breezewellAp3, hearthwayT100, voltwiseP1, sudsmithW8]
