export * from './capabilities.js'
export * from './envelopes.js'
export * from './topics.js'
export * from './device.js'
