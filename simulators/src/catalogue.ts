import { canonicalSimulators } from './canonical-simulator.js'
import { brands } from './brands/index.js'
import type { Simulator } from './simulator.js'

/** Every simulated appliance kind, canonical and brand dialects alike. */
export const allSimulators: readonly Simulator[] = [...canonicalSimulators, ...brands]
