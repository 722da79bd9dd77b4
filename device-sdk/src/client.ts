// The device client (`connectDevice`) over mqtt.js: `@trellis/device-sdk/client`.
export * from './device.js'
export * from './end-within.js'
