// The device contract without a transport: capabilities, topics, envelopes,
// units, mappings and actions. Importable where mqtt.js is not wanted
// (`@trellis/device-sdk/contract`): the broker, a browser, a code generator.
export * from './capabilities.js'
export * from './envelopes.js'
export * from './topics.js'
export * from './units.js'
export * from './mapping.js'
export * from './actions.js'
