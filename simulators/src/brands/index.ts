import type { Brand } from './appliance.js'
import { breezewell } from './breezewell.js'
import { frostline } from './frostline.js'
import { hearthway } from './hearthway.js'
import { sudsmith } from './sudsmith.js'
import { voltwise } from './voltwise.js'

export type { Appliance, Brand, BrandSimulator, BrandStartOptions } from './appliance.js'
export { breezewell, frostline, hearthway, sudsmith, voltwise }

/**
 * Every built-in brand, each a Simulator whose model carries the brand's
 * mapping: declare `brand.model` with `POST /v1/models` as the maker
 * `brand.brand`, provision devices, then `brand.start({ url, deviceId, secret })`.
 */
export const brands: readonly Brand[] = [frostline, breezewell, hearthway, voltwise, sudsmith]
