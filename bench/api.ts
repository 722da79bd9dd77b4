import type { OptionSpecs } from './lib/options.js'
export const apiOptions = {} satisfies OptionSpecs
export async function api (): Promise<void> { throw new Error('not yet') }
