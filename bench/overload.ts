import type { OptionSpecs } from './lib/options.js'
export const overloadOptions = {} satisfies OptionSpecs
export async function overload (): Promise<void> { throw new Error('not yet') }
