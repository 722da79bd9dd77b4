export * from './policy.js'
export * from './limits.js'
export * from './broker.js'
export * from './websocket.js'
