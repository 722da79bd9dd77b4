import type { OptionSpecs } from './lib/options.js'
export const connectionsOptions = {} satisfies OptionSpecs
export async function connections (): Promise<void> { throw new Error('not yet') }
